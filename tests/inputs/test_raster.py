import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import from_origin

from geovec.inputs import GeoVecInputError, read_image
from geovec.inputs.georef import read_georef
from geovec.inputs.raster import read_tiff
from geovec.inputs.scaling import to_uint8
from tests.conftest import scene, write_geotiff


def rgb16(h=64, w=80):
    base = np.moveaxis(scene(3, max(h, w))[:h, :w], -1, 0).astype(np.uint16)
    return base * 40 + 500  # 16-bit reflectance-like values far above 255


def test_utm_geotiff_centre_and_footprint(tmp_path):
    # 80 x 64 px, 10 m pixels, origin (500000 E, 5_800_000 N) in UTM 32N (EPSG:32632)
    path = write_geotiff(tmp_path / "utm.tif", "EPSG:32632", from_origin(500000, 5800000, 10, 10), rgb16())
    img = read_image(path)
    assert img.pixels.shape == (64, 80, 3) and img.pixels.dtype == np.uint8
    to_wgs = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(500000 + 400, 5800000 - 320)
    assert img.georef.centre_lat == pytest.approx(lat, abs=1e-7)
    assert img.georef.centre_lon == pytest.approx(lon, abs=1e-7)
    tl = to_wgs.transform(500000, 5800000)
    assert img.georef.footprint[0] == pytest.approx(tl, abs=1e-7)  # (lon, lat): x = lon
    assert img.georef.footprint[0] == img.georef.footprint[-1]
    minlon, minlat, maxlon, maxlat = img.georef.bbox
    assert minlon < lon < maxlon and minlat < lat < maxlat
    assert "POLYGON" in img.georef.footprint_wkt()


def test_web_mercator_geotiff(tmp_path):
    path = write_geotiff(tmp_path / "m.tif", "EPSG:3857", from_origin(665000, 6650000, 15.8, 15.8),
                         np.moveaxis(scene(1, 32), -1, 0))
    g = read_georef(path)
    lon, lat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True).transform(665000 + 16 * 15.8, 6650000 - 16 * 15.8)
    assert (g.centre_lat, g.centre_lon) == pytest.approx((lat, lon), abs=1e-7)


def test_16_bit_is_stretched_not_clipped(tmp_path):
    path = write_geotiff(tmp_path / "s.tif", "EPSG:4326", from_origin(5, 52, 0.001, 0.001), rgb16())
    px = read_image(path).pixels
    assert px.min() == 0 and px.max() == 255  # 2-98 percentile stretch uses the full range
    assert len(np.unique(px)) > 50


def test_single_band_and_band_selection(tmp_path):
    data = np.stack([np.full((20, 20), v, np.uint8) for v in (10, 20, 30, 40)])
    path = write_geotiff(tmp_path / "b.tif", "EPSG:4326", from_origin(5, 52, 0.001, 0.001), data)
    assert read_image(path).pixels[0, 0].tolist() == [10, 20, 30]  # first three bands
    assert read_tiff(path, bands=(4, 3, 2)).pixels[0, 0].tolist() == [40, 30, 20]
    with pytest.raises(GeoVecInputError, match="band 5"):
        read_tiff(path, bands=(5,))
    grey = write_geotiff(tmp_path / "g.tif", "EPSG:4326", from_origin(5, 52, 0.001, 0.001), data[:1])
    assert read_image(grey).pixels[0, 0].tolist() == [10, 10, 10]


def test_window_has_its_own_georef(tmp_path):
    path = write_geotiff(tmp_path / "w.tif", "EPSG:32631", from_origin(400000, 5500000, 10, 10), rgb16(100, 100))
    full = read_tiff(path)
    win = read_tiff(path, window=(50, 50, 50, 50))
    assert win.pixels.shape == (50, 50, 3)
    # the window starts at the full image's centre pixel and ends at its bottom-right corner
    assert win.georef.footprint[0] == pytest.approx((full.georef.centre_lon, full.georef.centre_lat), abs=1e-7)
    assert win.georef.footprint[2] == pytest.approx(full.georef.footprint[2], abs=1e-7)
    assert win.georef.centre_lat < full.georef.centre_lat and win.georef.centre_lon > full.georef.centre_lon


def test_plain_tiff_has_no_georef(tmp_path):
    from PIL import Image

    p = tmp_path / "plain.tif"
    Image.fromarray(scene(2, 40)).save(p)
    img = read_image(p)
    assert img.georef is None and img.pixels.shape == (40, 40, 3)


def test_corrupt_tiff_is_reported(tmp_path):
    p = tmp_path / "corrupt.tif"
    p.write_bytes(b"II*\x00garbage")
    with pytest.raises(GeoVecInputError, match="corrupt.tif"):
        read_image(p)


def test_float_and_uint8_scaling():
    a = np.linspace(-1, 1, 300, dtype=np.float32).reshape(10, 10, 3)
    out = to_uint8(a)
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0
    small = np.arange(12, dtype=np.uint16).reshape(2, 2, 3)
    assert to_uint8(small).tolist() == small.tolist()


def test_real_compressed_geotiffs(shared_data):
    """The shared RSVQA GeoTIFFs are JPEG-compressed and tiled; centres match geo_index.csv."""
    import csv

    rows = list(csv.DictReader(open(shared_data / "geo_index.csv")))
    for row in rows[:3] + rows[-3:]:
        img = read_image(shared_data / row["dataset"] / row["relpath"])
        assert img.pixels.shape[:2] == (int(row["height"]), int(row["width"]))
        assert img.georef.centre_lat == pytest.approx(float(row["center_lat"]), abs=1e-5)
        assert img.georef.centre_lon == pytest.approx(float(row["center_lon"]), abs=1e-5)
