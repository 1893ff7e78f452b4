"""Issue 10, item 4: multispectral rasters. Band selection by sensor (Sentinel-2 L1C / L2A / 10-band, band
descriptions, Landsat 8/9), ``bands=`` overrides, and one scaling per product (never per chip)."""

import csv

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geovec.inputs import GeoVecInputError, parse_item, read_image
from geovec.inputs.bands import TRUE_COLOUR_MAX_DN, BandSelection, describe_raster
from geovec.inputs.raster import read_tiff
from geovec.inputs.scaling import scale_to_uint8
from tests.conftest import scene, write_geotiff

T = from_origin(400_000, 5_600_000, 10, 10)


def _bands(n, h=32, w=32, seed=0, hi=6000, dtype=np.uint16):
    """n bands where band b (1-based) holds 100 * b + noise: which band was read is visible in the pixels."""
    rng = np.random.default_rng(seed)
    return np.stack([100 * b + rng.integers(0, 50, (h, w)) for b in range(1, n + 1)]).astype(dtype)


def _s2_uint8(raw):
    """The Sentinel-2 true-colour scale spelled out: DN / 3000 * 255, rounded, clipped."""
    return np.clip(np.round(raw.astype(np.float64) / 3000.0 * 255.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("count, sensor, rgb", [(13, "Sentinel-2 L1C", (4, 3, 2)), (12, "Sentinel-2 L2A", (4, 3, 2)),
                                                (10, "Sentinel-2", (3, 2, 1))])
def test_sentinel2_band_orders_by_count(tmp_path, count, sensor, rgb):
    data = _bands(count)
    path = write_geotiff(tmp_path / "s2.tif", "EPSG:32633", T, data)
    p = describe_raster(path)
    assert (p.sensor, p.rgb, p.scale) == (sensor, rgb, (0.0, TRUE_COLOUR_MAX_DN))
    px = read_image(path).pixels
    expected = _s2_uint8(np.moveaxis(data[[b - 1 for b in rgb]], 0, -1))
    assert np.array_equal(px, expected)


def test_band_descriptions_name_the_bands(tmp_path):
    order = ["B08", "B04", "B11", "B02", "B03"]  # any order: the names decide
    data = _bands(len(order))
    path = write_geotiff(tmp_path / "named.tif", "EPSG:32633", T, data)
    with rasterio.open(path, "r+") as ds:
        for i, name in enumerate(order, 1):
            ds.set_band_description(i, name)
        ds.update_tags(SPACECRAFT_NAME="Sentinel-2B")
    p = describe_raster(path)
    assert p.rgb == (2, 5, 4) and p.sensor == "Sentinel-2" and p.how == "band descriptions"
    assert np.array_equal(read_image(path).pixels, _s2_uint8(np.moveaxis(data[[1, 4, 3]], 0, -1)))
    # the same names without a Sentinel-2 tag: bands by name, scaled once per raster (no fixed sensor scale)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(SPACECRAFT_NAME="unknown")
    p = describe_raster(path)
    assert p.rgb == (2, 5, 4) and p.scale is None
    # generic numbering is no band name: a NAIP-like R, G, B, NIR file described "Band 1".."Band 4" stays R, G, B
    naip = write_geotiff(tmp_path / "naip.tif", "EPSG:26918", T, _bands(4, dtype=np.uint8))
    with rasterio.open(naip, "r+") as ds:
        for i in range(1, 5):
            ds.set_band_description(i, f"Band {i}")
    assert describe_raster(naip).rgb == (1, 2, 3)


def test_landsat_8_9_picks_b4_b3_b2_with_its_fixed_scale(tmp_path):
    data = _bands(7, hi=20000) * 40 + 7000  # Collection 2 SR digital numbers
    path = write_geotiff(tmp_path / "LC09_L2SP_198024_20230601_20230607_02_T1_SR_stack.tif", "EPSG:32631", T,
                         data.astype(np.uint16))
    p = describe_raster(path)
    assert p.sensor == "Landsat 8/9 L2" and p.rgb == (4, 3, 2)
    lo, hi = p.scale  # reflectance = DN * 2.75e-5 - 0.2 -> 0 .. 0.3 shown as 0 .. 255
    assert lo * 2.75e-5 - 0.2 == pytest.approx(0.0, abs=1e-9) and hi * 2.75e-5 - 0.2 == pytest.approx(0.3)
    px = read_image(path).pixels
    assert np.array_equal(px, scale_to_uint8(np.moveaxis(data[[3, 2, 1]], 0, -1), lo, hi))
    # a stack whose band descriptions say SR_B1..SR_B7 is recognised without the product id in the name
    other = write_geotiff(tmp_path / "stack.tif", "EPSG:32631", T, data.astype(np.uint16))
    with rasterio.open(other, "r+") as ds:
        for i in range(1, 8):
            ds.set_band_description(i, f"SR_B{i}")
        ds.update_tags(SPACECRAFT_ID="LANDSAT_8")
    assert describe_raster(other).rgb == (4, 3, 2) and describe_raster(other).sensor == "Landsat 8/9 L2"


def test_rgb_files_and_few_bands_keep_their_colours(tmp_path):
    data = np.stack([np.full((20, 20), v, np.uint8) for v in (10, 20, 30, 40)])
    assert describe_raster(write_geotiff(tmp_path / "four.tif", "EPSG:4326", T, data)).rgb == (1, 2, 3)
    rgb = write_geotiff(tmp_path / "rgb.tif", "EPSG:4326", T, data[:3], photometric="RGB")
    assert describe_raster(rgb).rgb == (1, 2, 3) and describe_raster(rgb).how == "colour interpretation"
    assert describe_raster(write_geotiff(tmp_path / "g.tif", "EPSG:4326", T, data[:1])).rgb == (1,)
    # 13 uint8 bands is no Sentinel-2 product of digital numbers: no fixed scale
    assert describe_raster(write_geotiff(tmp_path / "u8.tif", "EPSG:4326", T, _bands(13, dtype=np.uint8))).scale is None


def test_bands_override_by_item_key_and_argument(tmp_path):
    data = _bands(13)
    path = write_geotiff(tmp_path / "s2.tif", "EPSG:32633", T, data)
    false_colour = _s2_uint8(np.moveaxis(data[[7, 3, 2]], 0, -1))
    assert np.array_equal(read_tiff(path, bands=(8, 4, 3)).pixels, false_colour)
    item = parse_item({"image": str(path), "bands": [8, 4, 3]})
    assert isinstance(item.image, BandSelection) and item.image.bands == (8, 4, 3)
    assert np.array_equal(read_image(item.image).pixels, false_colour)
    assert item.content_key() != parse_item({"image": str(path)}).content_key()
    grey = read_image(BandSelection(str(path), (8,))).pixels
    assert np.array_equal(grey[..., 0], grey[..., 2]) and np.array_equal(grey[..., 0], false_colour[..., 0])
    # arrays: bands pick channels
    arr = np.dstack([np.full((4, 4), v, np.uint8) for v in (1, 2, 3, 4)])
    assert read_image(arr, bands=(4, 3, 2)).pixels[0, 0].tolist() == [4, 3, 2]
    for bad, why in (([14, 4, 3], "band 14 requested but the raster has 13"), ([0, 1, 2], "1-based"),
                     ([1, 2], "1 \\(grey\\) or 3"), ("4,3,2", "list of 1-based"), ([1.5, 2, 3], "integers")):
        with pytest.raises(GeoVecInputError, match=why):
            read_image(parse_item({"image": str(path), "bands": bad}).image)
    with pytest.raises(GeoVecInputError, match="give an image"):
        parse_item({"text": "x", "bands": [1, 2, 3]})


def _chips(path, size):
    """The raw values and the uint8 pixels of every size x size window of a raster, read window by window."""
    with rasterio.open(path) as ds:
        raw = np.moveaxis(ds.read(), 0, -1)
    out = []
    for r in range(0, raw.shape[0], size):
        for c in range(0, raw.shape[1], size):
            px = read_tiff(path, window=(c, r, size, size)).pixels
            out.append((raw[r:r + size, c:c + size], px))
    return out


def _one_mapping(chips, band):
    """{raw value: uint8} over all chips of band ``band``; fails if one raw value gets two outputs."""
    seen: dict[int, int] = {}
    for raw, px in chips:
        for v, o in zip(raw[..., band].ravel().tolist(), px[..., band].ravel().tolist()):
            assert seen.setdefault(v, o) == o, f"value {v} -> {seen[v]} in one chip, {o} in another"
    return seen


def test_two_chips_of_one_product_get_the_same_scaling(tmp_path):
    # a generic 16-bit RGB product, dark on the left, bright on the right: a per-chip stretch would map the same
    # value differently in the two halves; the per-raster stretch maps it alike
    h, w = 64, 128
    base = np.moveaxis(scene(4, 128)[:h, :w], -1, 0).astype(np.uint16) * 10 + 1000
    base[:, :, w // 2:] += 1500
    base[:, :4, :4] = 1700  # one value present in both halves
    base[:, :4, 64:68] = 1700
    path = write_geotiff(tmp_path / "p16.tif", "EPSG:32632", T, base)
    chips = _chips(path, 64)
    for band in range(3):
        _one_mapping(chips, band)
    left, right = chips[0][1], chips[1][1]
    assert left[0, 0].tolist() == right[0, 0].tolist()  # 1700 in both
    # the windows are the crops of the whole-raster read
    whole = read_image(path).pixels
    assert np.array_equal(whole[:, :64], left) and np.array_equal(whole[:, 64:], right)
    # and a whole read still uses the display range (a 2-98 % stretch of the raster)
    assert whole.min() == 0 and whole.max() == 255


def test_large_rasters_are_stretched_from_a_sample_or_their_overviews(tmp_path, monkeypatch):
    from geovec.inputs import scaling

    # a 128 x 128 raster is "large" now (each test's files are new, so no stretch of them is cached yet)
    monkeypatch.setattr(scaling, "STRETCH_SAMPLE_PIXELS", 1 << 10)
    data = (np.moveaxis(scene(6, 128), -1, 0).astype(np.uint16) * 12 + 300)
    plain = write_geotiff(tmp_path / "plain.tif", "EPSG:32632", T, data)
    ovr = write_geotiff(tmp_path / "ovr.tif", "EPSG:32632", T, data)
    from rasterio.enums import Resampling

    with rasterio.open(ovr, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.nearest)
    for path in (plain, ovr):
        chips = _chips(path, 32)
        for band in range(3):
            _one_mapping(chips, band)
        lo, hi = scaling.raster_stretch(path, (1, 2, 3))
        assert (lo >= 300).all() and (hi <= data.max()).all() and (hi > lo + 1000).all()
        with rasterio.open(path) as ds:
            sample = scaling.stretch_sample(ds, [1, 2, 3])
        assert sample.shape[0] == 3 and 500 < sample[0].size <= 1 << 11  # a sample, not the 16384 pixels


def test_nodata_is_left_out_of_the_stretch(tmp_path):
    data = np.moveaxis(scene(7, 64), -1, 0).astype(np.uint16) * 10 + 2000
    data[:, :32] = 0  # half the raster is nodata
    path = write_geotiff(tmp_path / "nd.tif", "EPSG:32632", T, data, nodata=0)
    with_nodata = read_image(path).pixels
    valid = with_nodata[:, 32:]
    assert valid.min() == 0 and valid.max() == 255  # the stretch spans the valid pixels, not 0 .. max


# --- the real Sentinel-2 files ----------------------------------------------------------------------------------
def _real(shared_data, dataset):
    rows = [r for r in csv.DictReader(open(shared_data / "geo_index.csv")) if r["dataset"] == dataset]
    assert rows, dataset
    return [shared_data / dataset / r["relpath"] for r in rows]


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset, sensor", [("eurosat_ms", "Sentinel-2 L1C"), ("satclip_s2", "Sentinel-2 L2A")])
def test_real_sentinel2_files_are_read_in_true_colour(shared_data, dataset, sensor):
    from geovec.data.geo import SOURCES, source_rgb

    source = next(s for s in SOURCES if s.dataset == dataset)
    files = _real(shared_data, dataset)
    assert len(files) == {"eurosat_ms": 131, "satclip_s2": 23}[dataset]
    for path in files:
        p = describe_raster(path)
        assert (p.sensor, p.rgb, p.scale) == (sensor, (4, 3, 2), (0.0, 3000.0)), path
    means = []
    for path in files[:: max(1, len(files) // 8)]:
        with rasterio.open(path) as ds:
            raw = np.moveaxis(ds.read([4, 3, 2]), 0, -1)
            bench = source_rgb(ds, source)  # the benchmark's geo chips: the same one definition of true colour
        px = read_image(path).pixels
        assert np.array_equal(px, _s2_uint8(raw)) and np.array_equal(px, bench), path
        means.append(px.mean())
    assert 40 < np.median(means) < 215  # colours, not black or white frames (snow does saturate at 0.3)


@pytest.mark.shared_data
def test_real_chips_of_one_sentinel2_product_get_the_same_scaling(shared_data):
    path = _real(shared_data, "satclip_s2")[0]  # 256 x 256 x 12, L2A
    chips = _chips(path, 128)
    assert len(chips) == 4
    raw_b4 = [np.asarray(r[..., 3]) for r, _ in chips]
    # the same digital number maps to the same output in every chip (and shared values exist)
    with rasterio.open(path) as ds:
        rgb = np.moveaxis(ds.read([4, 3, 2]), 0, -1)
    for (raw, px), (r0, c0) in zip(chips, [(0, 0), (0, 128), (128, 0), (128, 128)]):
        assert np.array_equal(px, _s2_uint8(rgb[r0:r0 + 128, c0:c0 + 128]))
    shared = set(raw_b4[0].ravel().tolist()) & set(raw_b4[3].ravel().tolist())
    assert len(shared) > 10
    whole = read_image(path).pixels
    assert np.array_equal(whole[:128, 128:], chips[1][1])


@pytest.mark.shared_data
def test_an_index_of_real_sentinel2_files_uses_their_true_colour(shared_data, tmp_path):
    from geovec.index.chips import ChipSpec, plan_chips, read_chip

    path = _real(shared_data, "eurosat_ms")[0]
    chip = plan_chips(path, ChipSpec(32))[3]
    with rasterio.open(path) as ds:
        raw = np.moveaxis(ds.read([4, 3, 2]), 0, -1)
    c, r, w, h = chip.window
    assert np.array_equal(read_chip(chip).pixels, _s2_uint8(raw[r:r + h, c:c + w]))
