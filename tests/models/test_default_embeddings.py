"""The bundled default embeds a fixed mixed batch exactly as it did before it was composed of its parts (issue 24):
``data/default_embeddings.npz`` holds its embeddings at commit cb93107 (``data/make_default_embeddings.py``), on
torch and on onnxruntime, one thread (another thread count sums in another order: ~1e-7)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "data" / "default_embeddings.npz"


def mixed_batch() -> list[dict]:
    from geovec.runtime.backends import synthetic_scene

    img, img2 = synthetic_scene(7, 320, 256), synthetic_scene(11, 640, 480)
    return [
        {"text": "a harbour with many boats"},
        {"image": img},
        {"image": img2, "boxes": [[40, 60, 200, 180]]},
        {"lat": 52.37, "lon": 4.89},
        {"image": img2, "boxes": [[10, 20, 90, 120]], "text": "the small building", "lat": -33.9, "lon": 151.2},
        {"image": img, "text": "dense residential area"},
    ]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_default_reproduces_its_embeddings_before_the_composition(backend):
    import geovec

    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed (the geovec[onnx] extra)")
    ref = np.load(FIXTURE)
    model = geovec.load_model("geovec-compact", backend=backend, lazy=False)
    assert model.backend == backend
    for side in ("query", "document"):
        got = model.encode(mixed_batch(), task="retrieval", side=side, batch_size=4)
        np.testing.assert_allclose(got, ref[f"{backend}-{side}"], rtol=0, atol=1e-6, err_msg=f"{backend} {side}")
