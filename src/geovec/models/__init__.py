"""Models: towers, the single encoder, backbones, pooling, checkpoints and the registry."""

from geovec._lazy import lazy_exports

__all__ = ["EmbeddingModel", "GeoVecConfig", "available_models", "build_untrained", "load_model"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "EmbeddingModel": "geovec.models.base", "GeoVecConfig": "geovec.models.config",
    "available_models": "geovec.models.registry", "build_untrained": "geovec.models.registry",
    "load_model": "geovec.models.registry",
})
