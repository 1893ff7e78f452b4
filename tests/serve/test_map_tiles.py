"""The map's imagery tiles (the indexed rasters at every zoom, previews for zoomed-out tiles of large rasters)
and the similarity heatmap (every chip scored with its stored vector)."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from PIL import Image

from geovec.index.chips import ChipSpec, plan_chips, read_chip

pytest.importorskip("rio_tiler", reason="rio-tiler (serve extra) is not installed")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """XYZ tile holding (lon, lat) and the point's pixel position (px, py) in it."""
    n = 2**z
    fx = (lon + 180) / 360 * n
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(fx), int(fy), (fx - int(fx)) * 256, (fy - int(fy)) * 256


def rgba(r) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))


def pixel_lonlat(chip, col: int, row: int) -> tuple[float, float]:
    import rasterio
    from rasterio.warp import transform

    with rasterio.open(chip.path) as ds:
        x, y = ds.xy(chip.window[1] + row, chip.window[0] + col)
        lon, lat = transform(ds.crs, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


# chips away from where the two UTM scenes overlap (there the first file in path order is drawn on top)
@pytest.mark.parametrize("name,index", [("merc.tif", 1), ("utm31.tif", 0), ("utm32.tif", 3)])
def test_a_close_tile_shows_the_chips_own_pixels(client, served, name, index):
    _, scenes, _ = served
    chip = plan_chips(scenes / name, ChipSpec(64))[index]
    want = read_chip(chip).pixels  # the index's bands and scaling
    for col, row in ((10, 20), (40, 33), (55, 50)):
        lon, lat = pixel_lonlat(chip, col, row)
        x, y, px, py = tile_of(lon, lat, 18)  # a source pixel covers many tile pixels here
        got = rgba(client.get(f"/tiles/18/{x}/{y}.png"))
        assert got[int(py), int(px), 3] == 255
        assert np.abs(got[int(py), int(px), :3].astype(int) - want[row, col].astype(int)).max() <= 1, (name, col, row)


def test_zoomed_out_tiles_still_show_the_imagery(client):
    for z in (2, 5, 8):
        x, y, px, py = tile_of(6.0, 52.03, z)
        got = rgba(client.get(f"/tiles/{z}/{x}/{y}.png"))
        opaque = got[..., 3] == 255
        assert opaque.any() and got[opaque, :3].std() > 10, z  # imagery (random pixels), not a flat fill
    x, y, _, _ = tile_of(-60.0, -10.0, 5)  # far from every scene: transparent
    assert not rgba(client.get(f"/tiles/5/{x}/{y}.png"))[..., 3].any()
    for bad in ("3/8/0", "3/0/8", "25/0/0", "-1/0/0"):
        assert client.get(f"/tiles/{bad}.png").status_code in (404, 422)


def _smooth_raster(path, n=600):
    """A smooth 16-bit UTM raster (no noise), so a preview's averages and the source's samples agree."""
    import rasterio
    from rasterio.transform import from_origin

    yy, xx = np.mgrid[0:n, 0:n] / n
    bands = np.stack([1000 + 2000 * xx, 1000 + 2000 * yy, 2000 + 800 * np.sin(6 * xx)]).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=3, dtype="uint16", crs="EPSG:32631",
                       transform=from_origin(600000, 5800020, 30, 30), tiled=True, blockxsize=256,
                       blockysize=256) as ds:
        ds.write(bands)
    return path


def test_large_rasters_get_a_preview_for_zoomed_out_tiles(tmp_path, monkeypatch):
    from geovec.index.store import ChipStore, IndexInfo, chip_rows
    from geovec.serve import tiles

    raster = _smooth_raster(tmp_path / "big.tif")
    chips = plan_chips(raster, ChipSpec(200))
    store = ChipStore.create(tmp_path / "db", IndexInfo(model_id="m", revision="r", dimension=4))
    store.add(chip_rows(chips, np.eye(4, dtype=np.float32)[np.arange(len(chips)) % 4], "m"))
    monkeypatch.setattr(tiles, "PREVIEW_MAX", 150)  # 600 px counts as large here: a preview of factor 4
    source = tiles.Tiler(store, tmp_path / "none", previews=False)
    tiler = tiles.Tiler(store)
    assert tiler.preview_dir == tmp_path / "db" / "_previews"
    z_out = 8  # ~370 m tile pixels: coarser than the 120 m preview pixels
    x, y, _, _ = tile_of(5.15, 51.9, z_out)
    a, b = (np.asarray(Image.open(io.BytesIO(t.tile(z_out, x, y))).convert("RGBA")) for t in (source, tiler))
    previews = list(tiler.preview_dir.glob("*.tif"))
    assert len(previews) == 1
    both = (a[..., 3] == 255) & (b[..., 3] == 255)
    assert both.sum() > 0.9 * max((a[..., 3] == 255).sum(), (b[..., 3] == 255).sum())  # the same footprint
    assert np.abs(a[both, :3].astype(int) - b[both, :3].astype(int)).mean() < 4  # and the same colours
    # a close tile reads the source, and the preview is written only once
    x, y, _, _ = tile_of(5.15, 51.9, 15)
    assert tiler.tile(15, x, y) == source.tile(15, x, y)
    mtime = previews[0].stat().st_mtime_ns
    assert tiler.warm() == 1 and previews[0].stat().st_mtime_ns == mtime


def test_the_server_writes_previews_when_it_starts(tmp_path, monkeypatch, served):
    import time

    from fastapi.testclient import TestClient

    from geovec.index.build import build_index
    from geovec.serve import tiles
    from geovec.serve.app import create_app

    _, _, model = served
    (tmp_path / "scenes").mkdir()
    raster = _smooth_raster(tmp_path / "scenes" / "big.tif")
    build_index([raster], tmp_path / "db", model, ChipSpec(200), progress=False)
    monkeypatch.setattr(tiles, "PREVIEW_MAX", 150)
    with TestClient(create_app(tmp_path / "db", model)):
        deadline = time.time() + 30
        while not list((tmp_path / "db" / "_previews").glob("*.tif")) and time.time() < deadline:
            time.sleep(0.1)  # written by a background thread, not by a request
    assert len(list((tmp_path / "db" / "_previews").glob("*.tif"))) == 1


def test_heatmap_scores_every_chip_with_its_stored_vector(client, served):
    from geovec.index.store import ChipStore

    db, _, _ = served
    world = client.get("/chips", params={"bbox": "-180,-90,180,90", "limit": 2000}).json()["chips"]
    like = world[5]["id"]
    out = client.post("/search", json={"like": like, "k": 3, "heatmap": True}).json()
    h = out["heatmap"]
    assert h["count"] == len(world)
    scores = np.frombuffer(base64.b64decode(h["scores"]), np.uint8)
    r = client.get("/heatmap/boxes.bin")
    assert r.headers["x-heatmap-version"] == h["version"]
    boxes = np.frombuffer(r.content, "<f4").reshape(-1, 4)
    assert len(boxes) == len(scores) == len(world)
    # the chip itself scores highest (255) and sits at its own bbox
    assert np.allclose(boxes[scores.argmax()], world[5]["bbox"], atol=1e-4)
    assert h["hi"] == pytest.approx(1.0, abs=1e-5)
    # every score is the cosine of the stored vectors, in the boxes' order
    t = (ChipStore(db).table.search().where("min_lon IS NOT NULL")
         .select(["vector", "min_lon", "min_lat", "max_lon", "max_lat"]).limit(None).to_arrow())
    stored = np.array(t["vector"].to_pylist(), np.float32)
    stored_boxes = np.stack([t[c].to_numpy() for c in ("min_lon", "min_lat", "max_lon", "max_lat")], 1)
    row = [int(np.abs(stored_boxes - b).max(1).argmin()) for b in boxes]  # the stored chip at each box
    assert np.abs(stored_boxes[row] - boxes).max() < 1e-4 and len(set(row)) == len(row)
    q = stored[row[int(scores.argmax())]]
    exact = stored[row] @ q
    want = np.clip(np.rint((exact - h["lo"]) / (h["hi"] - h["lo"]) * 255), 0, 255)
    assert np.abs(want - scores).max() <= 1
    assert "heatmap" not in client.post("/search", json={"like": like, "k": 3}).json()  # only when asked
    r2 = client.get("/heatmap/boxes.bin", headers={"if-none-match": r.headers["etag"]})
    assert r2.status_code == 304


def test_warm_deletes_the_index_previews_no_raster_uses(tmp_path, monkeypatch):
    from geovec.index.store import ChipStore, IndexInfo, chip_rows
    from geovec.serve import tiles

    raster = _smooth_raster(tmp_path / "big.tif")
    chips = plan_chips(raster, ChipSpec(200))
    store = ChipStore.create(tmp_path / "db", IndexInfo(model_id="m", revision="r", dimension=4))
    store.add(chip_rows(chips, np.eye(4, dtype=np.float32)[np.arange(len(chips)) % 4], "m"))
    monkeypatch.setattr(tiles, "PREVIEW_MAX", 150)
    tiler = tiles.Tiler(store)
    stale = tiler.preview_dir / ("0" * 24 + ".tif")  # the preview of a raster re-indexed since, or removed
    stale.write_bytes(b"old")
    writing = tiler.preview_dir / ("1" * 24 + ".123.456.tmp.tif")  # another writer's unfinished file
    writing.write_bytes(b"partial")
    assert tiler.warm() == 1
    names = sorted(p.name for p in tiler.preview_dir.iterdir())
    assert names == sorted([tiler.preview_path(tiler.files()[0]).name, writing.name])
    elsewhere = tiles.Tiler(store, tmp_path / "shared-cache")  # a shared cache is never pruned
    (tmp_path / "shared-cache").mkdir()
    other = tmp_path / "shared-cache" / ("2" * 24 + ".tif")
    other.write_bytes(b"another index's")
    assert elsewhere.prune() == 0 and other.exists()
