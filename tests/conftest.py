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
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(1, 8), rng.uniform(1, 8), rng.uniform(0, 6.28)
        img[..., c] = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        img[mask] = rng.uniform(0, 1, 3)
    return (img * 255).astype(np.uint8)


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
