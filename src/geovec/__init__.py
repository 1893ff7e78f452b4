"""geovec: one encoder for interleaved remote-sensing inputs (image, text, boxes, lat/lon) and the RSMEB benchmark.

    import geovec
    model = geovec.load_model()
    E = model.encode(["a runway", {"image": "scene.tif", "box": [10, 10, 80, 60]}, {"lat": 52.1, "lon": 5.2}])
"""

import os as _os

# Process-wide settings: only these two, and only where the user has not set them (set either yourself, before
# importing geovec, to choose otherwise). geovec sets nothing else; in particular not HF_HUB_OFFLINE: its weights
# come from installed packages and are loaded from their local paths, so a hub is never asked for them, and the
# user's own hub downloads (sentence-transformers, MTEB) keep working beside it.
# - the tokenizers library's own thread pool is off: geovec already prepares items in threads, and a pool that
#   is live when a worker process forks (Ray, DataLoader) makes the library warn and disable itself;
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# - idle OpenMP threads sleep instead of spinning: spinning threads take the cores that item preparation and other
#   processes need (with the cores shared, encode ran an order of magnitude slower); with idle cores the cost is
#   within noise. Only takes effect if torch was not imported first.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["EmbeddingModel", "GeoVecConfig", "GeoVecInputError", "Item", "available_models", "load_model", "__version__"]

# the public names are imported on first use, so `import geovec` (and `geovec --version`) does not import torch
from geovec._lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, {
    "GeoVecInputError": "geovec.inputs", "Item": "geovec.inputs", "EmbeddingModel": "geovec.models",
    "GeoVecConfig": "geovec.models", "available_models": "geovec.models", "load_model": "geovec.models"})
