"""Tiny random-init backbones, written once per test session (seconds, no downloads)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.tiny import write_tiny_qwen2vl, write_tiny_smol


@pytest.fixture()
def one_thread():
    """One torch thread for the test (reference outputs computed so: another count sums in another order)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_smol_dir(tmp_path_factory):
    return write_tiny_smol(tmp_path_factory.mktemp("tiny-smol"))


@pytest.fixture(scope="session")
def tiny_qwen2vl_dir(tmp_path_factory):
    return write_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-qwen2vl"), variant="qwen2-vl")


@pytest.fixture(scope="session")
def tiny_qwen25vl_dir(tmp_path_factory):
    return write_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-qwen25vl"), variant="qwen2.5-vl")


@pytest.fixture(scope="session")
def scene_png(tmp_path_factory):
    """A 200x100 (W x H) RGB PNG with structure (gradients and a bright block)."""
    from PIL import Image

    h, w = 100, 200
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=-1).astype(np.uint8)
    img[20:60, 120:180] = 250
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="session")
def mixed_items(scene_png):
    """One of every input kind, and all of them together."""
    image_path = scene_png
    return [
        "a long runway next to the terminal",
        image_path,
        {"image": image_path, "text": "a bright roof"},
        {"image": image_path, "box": [120, 20, 180, 60]},
        {"image": image_path, "boxes": [[0, 0, 50, 50], [100, 50, 200, 100]], "text": "two regions"},
        {"lat": 52.1, "lon": 5.2},
        {"text": "canal houses", "lat": 52.37, "lon": 4.89},
        {"image": image_path, "box": [10, 10, 90, 90], "lat": -33.86, "lon": 151.2, "text": "harbour",
         "instruction": "Represent this place."},
    ]
