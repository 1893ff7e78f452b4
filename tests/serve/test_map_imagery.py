"""The map page's server side: chip thumbnails and Web Mercator overlays rendered from the index (georeferenced
where the chip is), the chips in a box, the basemap option, and the vendored Leaflet."""

import hashlib
import io
import math
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from geovec.index.chips import ChipSpec, plan_chips, read_chip
from geovec.serve.imagery import EARTH_RADIUS_M, Basemap, mercator

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "src" / "geovec" / "serve" / "static" / "vendor" / "leaflet"


def url(chip_id: str, kind: str) -> str:
    return f"/chips/{quote(chip_id, safe='')}/{kind}.png"


def png(r) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def test_thumbnail_is_the_chip_as_indexed(client, served):
    _, scenes, _ = served
    for name in ("merc.tif", "utm31.tif", "plain.png"):  # 16-bit 4-band, 8-bit UTM, a plain image
        chip = plan_chips(scenes / name, ChipSpec(64))[1]
        got = png(client.get(url(chip.id, "thumbnail"), params={"size": 64}))
        assert np.array_equal(got, read_chip(chip).pixels)
        small = png(client.get(url(chip.id, "thumbnail"), params={"size": 32}))
        assert small.shape == (32, 32, 3)
    # the old address is the same image
    assert client.get("/thumbnail", params={"id": chip.id, "size": 64}).content == \
        client.get(url(chip.id, "thumbnail"), params={"size": 64}).content


def test_overlay_of_a_web_mercator_chip_is_its_pixels(client, served):
    _, scenes, _ = served
    chip = plan_chips(scenes / "merc.tif", ChipSpec(64))[3]
    got = png(client.get(url(chip.id, "overlay")))
    assert got.shape == (64, 64, 4)
    assert (got[..., 3] == 255).mean() > 0.97
    diff = np.abs(got[..., :3].astype(int) - read_chip(chip).pixels.astype(int))
    assert np.median(diff) <= 2  # the same grid (EPSG:3857 chip over its own bbox): resampling only


def _lonlat_of_pixels(bbox, shape):
    """(lon, lat) of each overlay pixel centre: the overlay spans the bbox in Web Mercator."""
    h, w = shape
    x0, y0 = mercator(bbox[0], bbox[1])
    x1, y1 = mercator(bbox[2], bbox[3])
    xs = x0 + (np.arange(w) + 0.5) / w * (x1 - x0)
    ys = y1 - (np.arange(h) + 0.5) / h * (y1 - y0)
    lon = np.degrees(xs / EARTH_RADIUS_M)
    lat = np.degrees(2 * np.arctan(np.exp(ys / EARTH_RADIUS_M)) - math.pi / 2)
    return np.meshgrid(lon, lat)


def test_overlay_of_a_utm_chip_covers_exactly_its_footprint(client, served):
    import shapely

    db, scenes, _ = served
    from geovec.index.store import ChipStore, sql_str

    chip = plan_chips(scenes / "utm31.tif", ChipSpec(64))[6]  # near the zone's edge: rotated ~2.4 degrees
    row = ChipStore(db).column("footprint", "min_lon", "min_lat", "max_lon", "max_lat",
                               where="id = " + sql_str(chip.id)).to_pylist()[0]
    fp = shapely.from_wkb(row["footprint"])
    bbox = (row["min_lon"], row["min_lat"], row["max_lon"], row["max_lat"])
    got = png(client.get(url(chip.id, "overlay")))
    alpha = got[..., 3] > 0
    assert 0.85 < alpha.mean() < 0.99  # rotated in Web Mercator: corners of its bbox lie outside it
    lon, lat = _lonlat_of_pixels(bbox, alpha.shape)
    inside = shapely.contains_xy(fp, lon, lat)
    px = (bbox[2] - bbox[0]) / alpha.shape[1]
    near_edge = shapely.distance(fp.exterior, shapely.points(lon, lat)) < 1.5 * px
    assert np.all((alpha == inside) | near_edge)  # opaque exactly inside the footprint (up to a pixel)
    # and the pixels are the chip's: the overlay's centre pixel is the chip's centre pixel, nearly
    c = read_chip(chip).pixels[32, 32].astype(int)
    assert np.abs(got[alpha.shape[0] // 2, alpha.shape[1] // 2, :3].astype(int) - c).max() < 60


def test_overlay_needs_a_georeference_and_an_indexed_chip(client, served):
    _, scenes, _ = served
    plain = plan_chips(scenes / "plain.png", ChipSpec(64))[0]
    r = client.get(url(plain.id, "overlay"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_georeferenced"
    for kind in ("overlay", "thumbnail"):
        r = client.get(url("/etc/passwd#0,0,10,10", kind))
        assert r.status_code == 404 and r.json()["error"]["code"] == "chip_not_found"
    assert client.get(url(plain.id, "thumbnail"), params={"size": 5000}).status_code == 422


def test_cache_and_etag(client, served):
    _, scenes, _ = served
    chip = plan_chips(scenes / "utm32.tif", ChipSpec(64))[5]
    imagery = client.app.state.imagery
    first = client.get(url(chip.id, "overlay"))
    hits = imagery.hits
    again = client.get(url(chip.id, "overlay"))
    assert again.content == first.content and imagery.hits == hits + 1
    etag = first.headers["etag"]
    assert client.get(url(chip.id, "overlay"), headers={"if-none-match": etag}).status_code == 304
    assert client.get(url(chip.id, "thumbnail")).headers["etag"] != etag
    assert "max-age" in first.headers["cache-control"]


def test_chips_in_a_box(client, served):
    ov = client.get("/index/overview").json()
    world = client.get("/chips", params={"bbox": "-180,-90,180,90", "limit": 2000}).json()
    assert world["total"] == ov["placed"] == len(world["chips"])
    c = world["chips"][0]
    assert c["overlay"] == url(c["id"], "overlay") and c["thumbnail"] == url(c["id"], "thumbnail")
    assert client.get(c["overlay"]).status_code == 200
    b = c["bbox"]
    small = client.get("/chips", params={"bbox": ",".join(map(str, b))}).json()
    assert c["id"] in {x["id"] for x in small["chips"]} and small["total"] < world["total"]
    few = client.get("/chips", params={"bbox": "-180,-90,180,90", "limit": 3}).json()
    assert few["total"] == ov["placed"] and few["chips"] == []  # too many to draw: only the count
    assert client.get("/chips", params={"bbox": "0,0,1,1"}).json() == {"total": 0, "limit": 200, "chips": []}
    for bad in ("1,2,3", "a,b,c,d", "0,50,1,40", "0,0,1,nan", "0,0,200,1"):
        r = client.get("/chips", params={"bbox": bad})
        assert r.status_code == 422 and r.json()["error"]["param"] == "bbox"


def test_search_results_link_their_images(client):
    fc = client.post("/search", json={"text": "fields", "k": 50}).json()
    for f in fc["features"]:
        p = f["properties"]
        assert p["thumbnail"] == url(f["id"], "thumbnail")
        assert p["overlay"] == (url(f["id"], "overlay") if f["geometry"] else None)
    assert any(f["properties"]["overlay"] is None for f in fc["features"])  # the PNG's chips
    assert client.get("/map/config").json() == {"basemap": None, "index": True, "max_k": 200}


def test_basemap_templates(tmp_path, served):
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app

    remote = Basemap("https://tiles.example.org/{z}/{x}/{y}.png", "© someone", 17)
    assert remote.browser_config() == {"url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "© someone",
                                       "max_native_zoom": 17, "local": False}
    assert remote.local_file(1, 0, 0) is None
    for bad in ("https://tiles.example.org/{z}/{x}.png", "/data/tiles.png"):
        with pytest.raises(ValueError, match="XYZ template"):
            Basemap(bad)
    with pytest.raises(ValueError, match="does not exist"):
        Basemap(str(tmp_path / "nowhere" / "{z}/{x}/{y}.png"))
    (tmp_path / "t" / "2" / "1").mkdir(parents=True)
    Image.new("RGB", (256, 256), (10, 20, 30)).save(tmp_path / "t" / "2" / "1" / "3.png")
    local = Basemap(str(tmp_path / "t") + "/{z}/{x}/{y}.png")
    assert local.local_file(2, 1, 3) == tmp_path / "t" / "2" / "1" / "3.png"
    assert local.local_file(2, 1, 4) is None and local.local_file(2, 9, 3) is None  # outside the 4x4 grid
    tms = Basemap(str(tmp_path / "t") + "/{z}/{x}/{-y}.png")
    assert tms.local_file(2, 1, 0) == tmp_path / "t" / "2" / "1" / "3.png"
    db, _, model = served
    with TestClient(create_app(db, model, basemap=local)) as c:
        assert c.get("/map/config").json()["basemap"]["url"] == "/basemap/{z}/{x}/{y}.png"
        assert c.get("/basemap/2/1/3.png").status_code == 200
        assert c.get("/basemap/2/1/2.png").status_code == 404
        assert c.get("/basemap/2/1/..%2F..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
        assert c.get("/basemap/x/1/3.png").status_code == 422


def test_serve_refuses_a_bad_basemap(tmp_path):
    from typer.testing import CliRunner

    from geovec.cli import app

    r = CliRunner().invoke(app, ["serve", "--basemap", "https://tiles.example.org/tile.png"])
    assert r.exit_code == 2 and "{z}" in r.output


def test_vendored_leaflet_is_pinned_and_intact():
    sums = (VENDOR / "SHA256SUMS").read_text().split("\n")
    files = dict(reversed(line.split("  ", 1)) for line in sums if line.strip())
    assert {"leaflet.js", "leaflet.css", "LICENSE"} <= set(files)
    for name, digest in files.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    script = (REPO / "scripts" / "vendor-web.sh").read_text()
    version = re.search(r"^LEAFLET_VERSION=(\S+)$", script, re.M).group(1)
    integrity = re.search(r"^LEAFLET_INTEGRITY=(\S+)$", script, re.M).group(1)
    assert (VENDOR / "VERSION").read_text().split("\n")[0] == f"leaflet@{version} {integrity}"
    assert f't.version="{version}"' in (VENDOR / "leaflet.js").read_text()
    assert "sourceMappingURL" not in (VENDOR / "leaflet.js").read_text()  # no request for a map we do not ship
    assert "BSD 2-Clause" in (VENDOR / "LICENSE").read_text()
    assert subprocess.run(["bash", str(REPO / "scripts" / "vendor-web.sh"), "--check"], capture_output=True).returncode == 0
    assert '"serve/static/**/*"' in (REPO / "pyproject.toml").read_text()  # packaged with the wheel


def test_vendored_natural_earth_and_topojson_are_pinned():
    import json

    script = (REPO / "scripts" / "vendor-web.sh").read_text()
    for name, var in (("world-atlas", "WORLD_ATLAS"), ("topojson-client", "TOPOJSON")):
        folder = VENDOR.parent / name
        version = re.search(rf"^{var}_VERSION=(\S+)$", script, re.M).group(1)
        integrity = re.search(rf"^{var}_INTEGRITY=(\S+)$", script, re.M).group(1)
        assert (folder / "VERSION").read_text().split("\n")[0] == f"{name}@{version} {integrity}"
        sums = dict(reversed(line.split("  ", 1)) for line in (folder / "SHA256SUMS").read_text().splitlines() if line)
        assert "LICENSE" in sums
        for f, digest in sums.items():
            assert hashlib.sha256((folder / f).read_bytes()).hexdigest() == digest, (name, f)
    topo = json.loads((VENDOR.parent / "world-atlas" / "countries-50m.json").read_text())
    assert topo["type"] == "Topology" and {"countries", "land"} <= set(topo["objects"])
    assert len(topo["objects"]["countries"]["geometries"]) > 200  # Natural Earth 1:50m admin-0 countries
    assert "sourceMappingURL" not in (VENDOR.parent / "topojson-client" / "topojson-client.min.js").read_text()
