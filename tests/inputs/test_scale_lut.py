"""16-bit rasters are scaled through a lookup table (issue 26, item 7: cost at tile scale); it must give exactly
what scale_to_uint8 gives, for fixed sensor scales and per-raster stretches, unsigned and signed."""

import numpy as np
import pytest

from geovec.inputs.scaling import scale_lut, scale_to_uint8


@pytest.mark.parametrize("dtype", ["<u2", "<i2"])
@pytest.mark.parametrize("lo, hi", [((0.0, 0.0, 0.0), (3000.0, 3000.0, 3000.0)),
                                    ((-12.5, 100.0, 7.25), (812.0, 2999.5, 65000.0))])
def test_lookup_table_equals_scale_to_uint8(dtype, lo, hi):
    info = np.iinfo(np.dtype(dtype))
    data = np.random.default_rng(0).integers(info.min, info.max, (64, 64, 3), endpoint=True).astype(dtype)
    data[0, :3] = [info.min, 0, info.max]
    lut = scale_lut(np.dtype(dtype).str, lo, hi)
    got = np.stack([lut[c][data[..., c].view(np.uint16)] for c in range(3)], -1)
    assert np.array_equal(got, scale_to_uint8(data, np.asarray(lo, np.float32), np.asarray(hi, np.float32)))


@pytest.mark.parametrize("dtype", ["<u2", "<i2", "<f4"])
def test_scale_raster_applies_the_products_fixed_scale(dtype, tmp_path):
    """scale_raster (chips and map tiles alike): a known sensor's fixed DN range, whatever the dtype; uint8 as is."""
    from geovec.inputs.bands import RasterProduct
    from geovec.inputs.scaling import scale_raster

    product = RasterProduct(rgb=(1, 2, 3), sensor="test", scale=(0.0, 3000.0))
    data = np.random.default_rng(1).integers(0, 4000, (16, 16, 3)).astype(dtype)
    got = scale_raster(data, tmp_path / "unused.tif", [1, 2, 3], product)  # a fixed scale reads no file
    assert got.dtype == np.uint8 and np.array_equal(got, scale_to_uint8(data, 0.0, 3000.0))
    assert got[data >= 3000].min() == 255 and got[data == 0].max(initial=0) == 0
    u8 = data.astype(np.uint8)
    assert scale_raster(u8, tmp_path / "unused.tif", [1, 2, 3], product) is u8
