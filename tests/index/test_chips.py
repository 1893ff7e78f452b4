import numpy as np
import pytest
from pyproj import Transformer

from geovec.index.chips import ChipSpec, grid_offsets, grid_windows, plan_chips, read_chip
from geovec.inputs import GeoVecInputError

from tests.index.geovec_fake_model import write_geotiff


def test_grid_covers_every_pixel_with_last_chip_flush():
    assert grid_offsets(1000, 256, 256) == [0, 256, 512, 744]
    assert grid_offsets(100, 256, 256) == [0]
    assert grid_offsets(512, 256, 192) == [0, 192, 256]
    wins = grid_windows(300, 200, ChipSpec(128, 28))
    covered = np.zeros((200, 300), bool)
    for c, r, w, h in wins:
        assert (w, h) == (128, 128)
        covered[r : r + h, c : c + w] = True
    assert covered.all()


def test_chip_spec_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        ChipSpec(64, 64)


@pytest.mark.parametrize("name,crs", [("utm31.tif", "EPSG:32631"), ("utm32.tif", "EPSG:32632"),
                                      ("merc.tif", "EPSG:3857")])
def test_footprints_match_an_independent_reprojection(scenes, name, crs):
    import rasterio

    chips = plan_chips(scenes / name, ChipSpec(96, 16))
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    with rasterio.open(scenes / name) as ds:
        t = ds.transform
    for chip in chips:
        c, r, w, h = chip.window
        corners = [(c, r), (c + w, r), (c + w, r + h), (c, r + h)]
        expected = [to_wgs84.transform(*(t @ p)) for p in corners]
        ring = np.array(chip.footprint)
        assert np.allclose(ring[0], ring[-1])  # closed
        for corner in expected:  # every true corner is a vertex of the (densified) ring
            assert np.min(np.hypot(*(ring - corner).T)) < 1e-9
        lon, lat = to_wgs84.transform(*(t @ (c + w / 2, r + h / 2)))
        assert chip.centre_lat == pytest.approx(lat, abs=1e-9) and chip.centre_lon == pytest.approx(lon, abs=1e-9)
        x0, y0, x1, y1 = chip.bbox
        assert x0 <= lon <= x1 and y0 <= lat <= y1


def test_chips_across_utm_zones_meet_on_the_ground(tmp_path):
    # the same ground point (6.0 E, 52.0 N) seen by a 31N scene and a 32N scene: both chips containing it
    # must have footprints that contain it in WGS84, though their projected coordinates differ by ~400 km
    import shapely

    pt = (6.0, 52.0)
    for crs in ("EPSG:32631", "EPSG:32632"):
        x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*pt)
        path = write_geotiff(tmp_path / f"{crs[-5:]}.tif", 200, 200, crs, (x - 700, y + 700), 10.0)
        chips = plan_chips(path, ChipSpec(100))
        hits = [c for c in chips if shapely.Polygon(c.footprint).contains(shapely.Point(pt))]
        assert len(hits) == 1, crs
        # UTM grid north is rotated against true north off the central meridian: footprints are not lon/lat boxes
        ring = np.array(hits[0].footprint)
        assert abs(ring[0][1] - ring[8][1]) > 1e-5


def test_read_chip_georef_agrees_with_plan(scenes):
    chip = plan_chips(scenes / "utm31.tif", ChipSpec(128))[3]
    raster = read_chip(chip)
    assert raster.pixels.shape == (128, 128, 3)
    assert raster.georef.centre_lat == pytest.approx(chip.centre_lat, abs=1e-9)
    assert raster.georef.centre_lon == pytest.approx(chip.centre_lon, abs=1e-9)


def test_band_selection(tmp_path):
    import rasterio

    path = write_geotiff(tmp_path / "ms.tif", 64, 64, "EPSG:32631", (500_000, 5_000_000), 10.0, bands=5)
    chip = plan_chips(path, ChipSpec(32, bands=(5, 4, 1)))[0]
    with rasterio.open(path) as ds:
        expected = np.moveaxis(ds.read([5, 4, 1], window=((0, 32), (0, 32))), 0, -1)
    assert np.array_equal(read_chip(chip).pixels, expected)
    assert chip.id.endswith("|b5,4,1")
    with pytest.raises(GeoVecInputError, match="band"):
        plan_chips(path, ChipSpec(32, bands=(6,)))


def test_plain_image_chips_have_pixels_but_no_place(scenes):
    from PIL import Image

    chips = plan_chips(scenes / "plain.png", ChipSpec(64))
    assert len(chips) == 6 and all(c.footprint is None and c.centre_lat is None for c in chips)
    full = np.asarray(Image.open(scenes / "plain.png").convert("RGB"))
    c, r, w, h = chips[-1].window
    assert np.array_equal(read_chip(chips[-1]).pixels, full[r : r + h, c : c + w])


def test_datetime_tag_is_kept(scenes):
    chip = plan_chips(scenes / "utm31.tif", ChipSpec(128))[0]
    assert chip.datetime is not None and chip.datetime.isoformat() == "2024-06-01T10:30:00"


def test_corrupt_file_raises_input_error(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(GeoVecInputError, match="bad.tif"):
        plan_chips(bad, ChipSpec(64))
