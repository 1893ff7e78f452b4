"""Issue 26: chips across the antimeridian on the map. The server's answers (overview, search GeoJSON, heatmap
boxes, chip lists, imagery tiles and overlays) keep such a chip a narrow box across 180 degrees (RFC 7946:
west > east), never a world-spanning one, and nothing of it lands near longitude 0."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from geovec.inputs.footprint import lon_extent
from tests.index.geovec_fake_model import FakeGeoModel, write_dateline_scenes

GULF_OF_GUINEA = (-5.0, -3.0, 8.0, 6.0)


def lon_width(w: float, e: float) -> float:
    """Degrees of longitude from west to east going east (across 180 when west > east)."""
    return e - w if w <= e else e + 360.0 - w


@pytest.fixture(scope="module")
def dateline_client(tmp_path_factory):
    """A server over a UTM zone 1 scene and an EPSG:4326 raster (179.5 to 180.5 degrees) straddling 180 degrees."""
    pytest.importorskip("rio_tiler", reason="rio-tiler (serve extra) is not installed")
    from fastapi.testclient import TestClient

    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    base = tmp_path_factory.mktemp("dateline")
    scenes = write_dateline_scenes(base / "scenes")
    model = FakeGeoModel()
    build_index([scenes], base / "db", model, ChipSpec(32), progress=False)
    with TestClient(create_app(base / "db", model, Limits(roots=[scenes]))) as c:
        yield c


def test_overview_extent_and_boxes_stay_narrow_across_180(dateline_client):
    ov = dateline_client.get("/index/overview").json()
    assert ov["placed"] == 9
    w, s, e, n = ov["extent"]
    assert w > e and lon_width(w, e) < 2.0, ov["extent"]  # across 180, about 1.3 degrees wide
    crossing = [b for b in ov["boxes"] if b[0] > b[2]]
    assert len(crossing) == 3
    assert all(lon_width(b[0], b[2]) < 0.5 and -180 <= b[0] <= 180 and -180 <= b[2] <= 180 for b in ov["boxes"])


def test_search_geojson_of_a_crossing_chip_is_a_split_multipolygon(dateline_client):
    fc = dateline_client.post("/search", json={"text": "sea", "k": 20}).json()
    assert len(fc["features"]) == 9
    split = [f for f in fc["features"] if f["geometry"]["type"] == "MultiPolygon"]
    assert len(split) == 3
    for f in fc["features"]:
        lons = [c[0] for poly in (f["geometry"]["coordinates"] if f["geometry"]["type"] == "MultiPolygon"
                                  else [f["geometry"]["coordinates"]]) for ring in poly for c in ring]
        assert -180 <= min(lons) and max(lons) <= 180
        w, _, e, _ = f["properties"]["bbox"]
        assert lon_width(w, e) < 0.5 and (w > e) == (f in split), f["properties"]["bbox"]
    # a query box across 180 finds them all; one in the Gulf of Guinea none
    assert len(dateline_client.post("/search", json={"text": "x", "bbox": [179.0, -5, -179.0, 5], "k": 50})
               .json()["features"]) == 9
    assert dateline_client.post("/search", json={"text": "x", "bbox": list(GULF_OF_GUINEA), "k": 50}).json()["features"] == []


def test_chips_list_and_heatmap_boxes_across_180(dateline_client):
    got = dateline_client.get("/chips", params={"bbox": "179.0,-5,-179.0,5"}).json()
    assert got["total"] == 9 and sum(c["bbox"][0] > c["bbox"][2] for c in got["chips"]) == 3
    assert dateline_client.get("/chips", params={"bbox": ",".join(map(str, GULF_OF_GUINEA))}).json()["total"] == 0
    boxes = np.frombuffer(dateline_client.get("/heatmap/boxes.bin").content, "<f4").reshape(-1, 4)
    assert len(boxes) == 9 and int((boxes[:, 0] > boxes[:, 2]).sum()) == 3
    assert max(lon_width(float(b[0]), float(b[2])) for b in boxes) < 0.5
    heat = dateline_client.post("/search", json={"text": "sea", "k": 3, "heatmap": True}).json()["heatmap"]
    assert heat["count"] == 9


def _tile(client, lon: float, lat: float, z: int) -> np.ndarray:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = client.get(f"/tiles/{z}/{x}/{y}.png")
    assert r.status_code == 200
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))


@pytest.mark.parametrize("z,preview", [(9, False), (7, True)])
def test_imagery_tiles_on_both_sides_of_180_and_none_at_longitude_0(dateline_client, monkeypatch, z, preview):
    """Both sides of 180 hold imagery of both rasters (the EPSG:4326 one stores lon > 180 east of it), from the
    source and, zoomed out, from a preview."""
    if preview:
        monkeypatch.setattr("geovec.serve.tiles.PREVIEW_MAX", 32)  # these 96 px rasters get previews
    west, east = (_tile(dateline_client, lon, 1.5, z)[..., 3] == 255 for lon in (179.8, -179.8))
    # at z 9 the EPSG:4326 raster alone covers a third of either tile; the two sides are mirror images here
    assert west.mean() > (0.3 if z == 9 else 0.02) and abs(west.mean() - east.mean()) < 0.02, (west.mean(), east.mean())
    assert (_tile(dateline_client, 0.5, 1.5, z)[..., 3] == 0).all()


def test_the_overlay_of_a_chip_near_180_is_its_narrow_image(dateline_client):
    fc = dateline_client.post("/search", json={"text": "sea", "k": 20}).json()
    assert len(fc["features"]) == 9
    for f in fc["features"]:  # across 180, and on either side (the EPSG:4326 file stores lon > 180 east of it)
        r = dateline_client.get(f["properties"]["overlay"])
        assert r.status_code == 200, (f["id"], r.text)
        img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
        # a 32 px chip: the overlay is about as wide as high, not stretched round the world
        assert 0.3 < img.shape[1] / img.shape[0] < 3 and (img[..., 3] == 255).mean() > 0.5, (f["id"], img.shape)


@pytest.mark.parametrize("west,east,want", [
    ([10, 20], [15, 30], (10, 30)),
    ([179.5, -179.8, 178], [-179.5, -179.2, 179], (178, -179.2)),  # across 180: west > east
    ([-180], [180], (-180, 180)),
    ([179], [180], (179, 180)),
])
def test_lon_extent(west, east, want):
    assert lon_extent(west, east) == pytest.approx(want)
