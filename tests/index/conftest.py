"""Fixtures for index tests: small GeoTIFFs written with rasterio in tmp_path (several CRSs), a fake model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from geovec_fake_model import FakeGeoModel  # noqa: E402


def write_geotiff(path: Path, width: int, height: int, crs: str, origin: tuple[float, float], pixel_size: float,
                  bands: int = 3, seed: int = 0, dtype: str = "uint8", tags: dict | None = None) -> Path:
    """A north-up GeoTIFF with random pixels; ``origin`` is the top-left corner (x, y) in ``crs`` units."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    hi = 255 if dtype == "uint8" else 4000
    data = rng.integers(0, hi, size=(bands, height, width)).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands, dtype=dtype, crs=crs,
                       transform=from_origin(origin[0], origin[1], pixel_size, pixel_size)) as ds:
        ds.write(data)
        if tags:
            ds.update_tags(**tags)
    return path


@pytest.fixture
def fake_model():
    return FakeGeoModel()


@pytest.fixture
def scenes(tmp_path) -> Path:
    """A folder with three GeoTIFFs (UTM 31N, UTM 32N, Web Mercator) and one PNG."""
    from PIL import Image

    d = tmp_path / "scenes"
    d.mkdir()
    # 31N scene near its eastern zone edge (~5.9 E), 32N scene near its western edge (~6.1 E), both ~52 N
    write_geotiff(d / "utm31.tif", 300, 200, "EPSG:32631", (700_000, 5_770_000), 10.0, seed=1,
                  tags={"TIFFTAG_DATETIME": "2024:06:01 10:30:00"})
    write_geotiff(d / "utm32.tif", 256, 256, "EPSG:32632", (290_000, 5_770_000), 10.0, seed=2)
    write_geotiff(d / "merc.tif", 128, 128, "EPSG:3857", (580_000, 6_800_000), 20.0, seed=3, bands=4, dtype="uint16")
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (100, 150, 3)).astype(np.uint8)).save(d / "plain.png")
    return d


@pytest.fixture(scope="session")
def real_model():
    import geovec

    return geovec.load_model()


def shared_data_root() -> Path | None:
    root = os.environ.get("GEOVEC_DATA_ROOT")
    if root:
        return Path(root) if Path(root).exists() else None
    p = Path(__file__).resolve().parents[3] / "shared" / "data"
    return p if p.exists() else None
