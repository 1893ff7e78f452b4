"""geovec: one encoder for interleaved remote-sensing inputs (image, text, boxes, lat/lon) and the RSMEB benchmark.

    import geovec
    model = geovec.load_model()
    E = model.encode(["a runway", {"image": "scene.tif", "box": [10, 10, 80, 60]}, {"lat": 52.1, "lon": 5.2}])
"""

import os as _os

_os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from installed packages; never reach for a hub
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning. Measured on a busy 2-core machine: encode went from 1 to 24
# texts/s; on an idle machine the cost is within noise. Only takes effect if torch was not imported first.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from geovec.inputs import GeoVecInputError, Item  # noqa: E402
from geovec.models import EmbeddingModel, GeoVecConfig, available_models, load_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["EmbeddingModel", "GeoVecConfig", "GeoVecInputError", "Item", "available_models", "load_model", "__version__"]
