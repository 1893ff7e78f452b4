"""Fixtures for index tests: small GeoTIFFs written with rasterio in tmp_path (several CRSs), a fake model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from geovec_fake_model import FakeGeoModel, make_scenes, write_geotiff  # noqa: E402,F401


@pytest.fixture
def fake_model():
    return FakeGeoModel()


@pytest.fixture
def scenes(tmp_path) -> Path:
    """A folder with three GeoTIFFs (UTM 31N, UTM 32N, Web Mercator) and one PNG."""
    return make_scenes(tmp_path / "scenes")


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
