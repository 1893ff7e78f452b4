"""The spatial split and the chips of georeferenced scenes, on GeoTIFFs written here."""

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from geovec.data.geo import find_scenes, geo_places, haversine_km, spatial_split


def _write(path, lat, lon, size=64, bands=3, px_deg=0.0002, values=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.zeros((bands, size, size), dtype=np.uint8 if bands == 3 else np.uint16)
    if values is not None:
        for b, v in enumerate(values):
            data[b] = v
    else:
        data[:] = np.random.default_rng(0).integers(0, 255, size=data.shape)
    t = from_origin(lon - size / 2 * px_deg, lat + size / 2 * px_deg, px_deg, px_deg)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=data.dtype,
                       crs="EPSG:4326", transform=t) as ds:
        ds.write(data)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    # a row of 30 contiguous tiles (each ~1.4 km wide) and scattered patches far apart
    for i in range(30):
        _write(r / "rsvqa_lr" / "Images_LR" / f"{i}.tif", 52.0, 5.0 + i * 64 * 0.0002)
    for i, (lat, lon) in enumerate([(40.0, -3.0), (48.0, 2.0), (60.0, 25.0), (45.0, 12.0), (38.0, 23.0), (55.0, 37.0)]):
        _write(r / "eurosat_ms" / "Forest" / f"Forest_{i}.tif", lat, lon, bands=13,
               values=[100, 200, 600, 3000] + [0] * 9)
    return r


def test_no_held_out_scene_has_a_training_scene_beside_it(root):
    scenes = find_scenes(root)
    assert len(scenes) == 36
    for block_km, gap_km in ((2.0, 2.0), (5.0, 1.0), (10.0, 3.0)):
        split = spatial_split(scenes, block_km=block_km, gap_km=gap_km)
        ev = [s for s in scenes if split[s.scene] == "eval"]
        tr = [s for s in scenes if split[s.scene] == "train"]
        assert ev and tr
        for a in ev:
            for b in tr:
                assert haversine_km(a.lat, a.lon, b.lat, b.lon) - a.radius_km - b.radius_km >= gap_km
        # contiguous tiles next to a held-out block are dropped, not trained on
        assert any(v == "buffer" for v in split.values())


def test_split_is_seeded_and_by_block(root):
    scenes = find_scenes(root)
    assert spatial_split(scenes, seed=1) == spatial_split(scenes, seed=1)
    assert spatial_split(scenes, seed=1) != spatial_split(scenes, seed=2)


def test_chips_carry_their_own_centres_and_true_colour(root, tmp_path):
    places = geo_places(root, "all", cache_dir=tmp_path / "cache")
    lr = [p for p in places if p["dataset"] == "rsvqa_lr"]
    assert len(lr) == 30 * 16  # 4 x 4 chips per scene
    one = [p for p in lr if p["scene"] == "rsvqa_lr/Images_LR/0.tif"]
    assert len({(p["lat"], p["lon"]) for p in one}) == 16
    assert max(haversine_km(p["lat"], p["lon"], p["scene_lat"], p["scene_lon"]) for p in one) < 1.0
    assert Image.open(one[0]["image"]).size == (16, 16)
    eu = [p for p in places if p["dataset"] == "eurosat_ms"]
    assert len(eu) == 6 and eu[0]["text"] == "a Sentinel-2 satellite image of forest"
    px = np.asarray(Image.open(eu[0]["image"]))
    # bands 4 (red, 3000 -> 255), 3 (green, 600 -> 51), 2 (blue, 200 -> 17): true colour, fixed stretch
    assert tuple(px[0, 0]) == (255, 51, 17)
    # no place is in both splits
    ev = {p["scene"] for p in geo_places(root, "eval", cache_dir=tmp_path / "cache")}
    tr = {p["scene"] for p in geo_places(root, "train", cache_dir=tmp_path / "cache")}
    assert ev and tr and not ev & tr


def test_unknown_split_is_refused(root):
    with pytest.raises(ValueError, match="split must be"):
        geo_places(root, "test")
