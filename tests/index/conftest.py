"""Fixtures for index tests: small GeoTIFFs written with rasterio in tmp_path (several CRSs), a fake model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.index.geovec_fake_model import FakeGeoModel, make_scenes


@pytest.fixture
def fake_model():
    return FakeGeoModel()


@pytest.fixture
def scenes(tmp_path) -> Path:
    """A folder with three GeoTIFFs (UTM 31N, UTM 32N, Web Mercator) and one PNG."""
    return make_scenes(tmp_path / "scenes")
