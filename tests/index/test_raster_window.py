"""read_tiff(window=...) on the JPEG-in-TIFF (YCbCr) GeoTIFFs real archives hold (as in shared/data)."""

import numpy as np
import pytest

from geovec.index.chips import ChipSpec, plan_chips, read_chip
from geovec.inputs.raster import read_tiff


def test_window_of_a_jpeg_ycbcr_geotiff(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "jpeg.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, 256, 256)).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8", crs="EPSG:3857",
                       transform=from_origin(580_000, 6_800_000, 10, 10), compress="JPEG", photometric="YCBCR",
                       tiled=True, blockxsize=128, blockysize=128) as ds:
        ds.write(data)
    chips = plan_chips(path, ChipSpec(128))
    assert len(chips) == 4
    r = read_chip(chips[3])
    assert r.pixels.shape == (128, 128, 3)
    assert r.georef.centre_lat == pytest.approx(chips[3].centre_lat) and r.georef.crs == "EPSG:3857"
    whole = read_tiff(path)
    assert np.abs(whole.pixels[128:, 128:].astype(int) - r.pixels.astype(int)).mean() < 1  # same decode
