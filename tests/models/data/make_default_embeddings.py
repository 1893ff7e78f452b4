"""Writes default_embeddings.npz: the bundled default's embeddings of a fixed mixed batch (text, image,
image+box, place, all four, image+text) on the query and document sides, on torch and on onnxruntime, one thread.
Written first at commit cb93107 for r20 (before the model was composed of its parts, issue 24, so the composition
was held to the code before it), and again whenever the bundled default changes (r26-2026-12-05, r27-2026-12-05):

    PYTHONPATH=src:. python3 tests/models/data/make_default_embeddings.py

tests/models/test_default_embeddings.py holds the default model to them (1e-6).
"""

from pathlib import Path

import numpy as np
import torch

import geovec
from tests.models.test_default_embeddings import mixed_batch

torch.set_num_threads(1)
out = {}
for backend in ("torch", "onnx"):
    m = geovec.load_model("geovec-compact", backend=backend, lazy=False)
    for side in ("query", "document"):
        out[f"{backend}-{side}"] = m.encode(mixed_batch(), task="retrieval", side=side, batch_size=4)
np.savez_compressed(Path(__file__).with_name("default_embeddings.npz"), **out)
