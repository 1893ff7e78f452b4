"""Models: towers, the single encoder, backbones, pooling, checkpoints and the registry."""

from geovec.models.base import EmbeddingModel
from geovec.models.config import GeoVecConfig
from geovec.models.registry import available_models, build_untrained, load_model

__all__ = ["EmbeddingModel", "GeoVecConfig", "available_models", "build_untrained", "load_model"]
