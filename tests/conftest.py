"""Shared fixtures: the real model (loaded once), generated images and GeoTIFFs in the official formats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GEOVEC_DATA_ROOT", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def model():
    """The bundled default model, as a user gets it from ``geovec.load_model()``."""
    import geovec

    return geovec.load_model()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"../shared/data is absent ({SHARED_DATA}); CI has it")
    return SHARED_DATA


def scene(seed: int, size: int = 224) -> np.ndarray:
    """A structured (not pure-noise) RGB test scene: blobs and stripes, deterministic per seed."""
    from geovec.runtime.backends import synthetic_scene

    return synthetic_scene(seed, size, size)


@pytest.fixture
def fake(monkeypatch):
    """The fake geo model (``tests/index/geovec_fake_model.py``), returned by every ``geovec.load_model`` call."""
    import geovec
    from tests.index.geovec_fake_model import FakeGeoModel

    model = FakeGeoModel()
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: model)
    return model


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """Three JPEGs and a PNG in nested folders."""
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(scene(i)).save(d / f"scene_{i}.jpg", quality=90)
    Image.fromarray(scene(9, 128)).save(d / "sub" / "small.png")
    return d


def write_geotiff(path: Path, crs: str, transform, data: np.ndarray, **profile) -> Path:
    """Write (C, H, W) ``data`` as a GeoTIFF with the given CRS and affine transform."""
    import rasterio

    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype,
                       crs=crs, transform=transform, **profile) as ds:
        ds.write(data)
    return path
