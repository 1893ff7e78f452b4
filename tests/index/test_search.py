import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geovec.index import GeoIndex
from geovec.index.chips import ChipSpec, plan_chips, read_chip
from geovec.index.search import SearchQuery, haversine_km, prefilter_sql
from geovec.index.store import ChipStore

from tests.index.geovec_fake_model import FakeGeoModel


@pytest.fixture
def index(scenes, tmp_path):
    return GeoIndex.build([scenes], tmp_path / "db", FakeGeoModel(), chip_size=64, overlap=0, progress=False)


def _all_rows(index):
    return index.store.to_arrow().to_pylist()


def test_image_query_finds_its_own_chip(index, scenes):
    chip = plan_chips(scenes / "utm32.tif", ChipSpec(64))[5]
    pixels = read_chip(chip).pixels
    hits = index.search(image=pixels, k=3)
    assert hits[0].id == chip.id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score >= hits[1].score >= hits[2].score


def test_region_query_uses_the_region_task(index, scenes, monkeypatch):
    seen = {}
    orig = index.model.encode_query

    def spy(items, task="retrieval", **kw):
        seen["task"], seen["items"] = task, items
        return orig(items, task=task, **kw)

    monkeypatch.setattr(index.model, "encode_query", spy)
    img = read_chip(plan_chips(scenes / "utm32.tif", ChipSpec(64))[0]).pixels
    index.search(image=img, box=[0, 0, 32, 32], text="a field", k=2)
    assert seen["task"] == "region" and len(seen["items"]) == 1
    assert list(seen["items"][0]) == ["image", "box", "text"]  # one interleaved item
    index.search(text="a field", near=(52.0, 6.0), k=2)
    assert seen["task"] == "geo" and seen["items"][0]["lat"] == 52.0
    index.search(text="a field", k=2)
    assert seen["task"] == "retrieval"


def _exact(index, query_vec, keep):
    rows = [r for r in _all_rows(index) if keep(r)]
    v = np.stack([r["vector"] for r in rows])
    s = v @ (query_vec / np.linalg.norm(query_vec))
    return [rows[i]["id"] for i in np.argsort(-s)]


def test_near_within_is_an_exact_prefilter(index):
    q = SearchQuery(text="farm", near=(52.03, 5.95), within_km=3.0, k=5)
    hits = index.query(q)
    from geovec.index.search import embed_query

    vec = embed_query(index.model, q)
    inside = lambda r: r["centre_lat"] is not None and haversine_km(52.03, 5.95, r["centre_lat"], r["centre_lon"]) <= 3.0
    expected = _exact(index, vec, inside)
    assert 0 < len(expected)
    assert [h.id for h in hits] == expected[:5]
    assert all(h.distance_km <= 3.0 for h in hits)


def test_bbox_prefilter_keeps_only_intersecting_chips(index):
    rows = [r for r in _all_rows(index) if r["path"].endswith("utm32.tif")]
    x0 = min(r["min_lon"] for r in rows); x1 = max(r["max_lon"] for r in rows)
    y0 = min(r["min_lat"] for r in rows); y1 = max(r["max_lat"] for r in rows)
    # a box inside the 32N scene (the 31N scene overlaps part of it on the ground)
    box = (x0 + 0.3 * (x1 - x0), y0 + 0.3 * (y1 - y0), x0 + 0.5 * (x1 - x0), y0 + 0.5 * (y1 - y0))
    hits = index.search(text="anything", bbox=box, k=100)
    expected = {r["id"] for r in _all_rows(index) if r["min_lon"] is not None and r["max_lon"] >= box[0]
                and r["min_lon"] <= box[2] and r["max_lat"] >= box[1] and r["min_lat"] <= box[3]}
    assert 0 < len(expected) < len(_all_rows(index)) / 2
    assert {h.id for h in hits} == expected
    assert not any(h.path.endswith(("merc.tif", "plain.png")) for h in hits)


def test_antimeridian_bbox_sql():
    sql = prefilter_sql(SearchQuery(text="x", bbox=(170.0, -10.0, -170.0, 10.0)))
    assert "max_lon >= 170.0 OR min_lon <= -170.0" in sql


def test_query_validation():
    with pytest.raises(ValueError, match="needs a query"):
        SearchQuery(bbox=(0, 0, 1, 1)).validate()
    with pytest.raises(ValueError, match="within_km needs near"):
        SearchQuery(text="x", within_km=5).validate()
    with pytest.raises(ValueError, match="lat"):
        SearchQuery(near=(95.0, 0.0)).validate()


def test_search_with_wrong_model_is_refused(index):
    with pytest.raises(ValueError, match="must be embedded by the model that built the index"):
        GeoIndex(index.store.path, FakeGeoModel(name="another"))


def test_geojson_output(index):
    gj = index.search_geojson(text="runway", near=(52.0, 5.95), k=4)
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 4
    f = gj["features"][0]
    assert f["geometry"]["type"] == "Polygon" and f["properties"]["rank"] == 1 and "score" in f["properties"]
    ring = f["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and 5 < ring[0][0] < 7 and 51 < ring[0][1] < 53  # (lon, lat)


def test_cli_search_formats(index, scenes, monkeypatch, tmp_path):
    import geovec
    from geovec.cli import app

    monkeypatch.setattr(geovec, "load_model", lambda name=None: FakeGeoModel())
    db = str(index.store.path)
    runner = CliRunner()
    r = runner.invoke(app, ["search", "--db", db, "--text", "solar farm", "--near", "52.02,5.95", "--within", "5",
                            "-k", "3", "--format", "json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert len(hits) == 3 and all(h["distance_km"] <= 5 for h in hits)
    out = tmp_path / "r.geojson"
    r = runner.invoke(app, ["search", "--db", db, "--image", str(scenes / "plain.png"), "--box", "0,0,50,50",
                            "--format", "geojson", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["query"]["box"] == [0, 0, 50, 50]
    r = runner.invoke(app, ["search", "--db", db, "--text", "x", "--bbox", "5.9,51.9,6.1,52.1"])
    assert r.exit_code == 0 and "result(s)" in r.stdout
    r = runner.invoke(app, ["search", "--db", db, "--within", "5"])
    assert r.exit_code == 2 and "needs a query" in r.output


def test_cli_build_and_export(scenes, tmp_path, monkeypatch):
    import geovec
    from geovec.cli import app

    monkeypatch.setattr(geovec, "load_model", lambda name=None: FakeGeoModel())
    (scenes / "broken.tif").write_bytes(b"not a tiff")
    runner = CliRunner()
    db = tmp_path / "db"
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(db), "--chip-size", "128", "--overlap", "32"])
    assert r.exit_code == 1, r.output  # the exit-code convention of every job: 1 = finished, some inputs failed
    assert "broken.tif" in r.output and len(ChipStore(db)) > 0
    r = runner.invoke(app, ["index", "export", "--db", str(db), "--geoparquet", str(tmp_path / "x.parquet")])
    assert r.exit_code == 0 and (tmp_path / "x.parquet").exists()


def test_cli_build_passes_ray_address_and_chipping(monkeypatch, tmp_path):
    import geovec
    import geovec.index.build as build_mod
    from geovec.cli import app

    seen = {}

    def fake_build(paths, db, model, spec, **kw):
        seen.update(kw, spec=spec)
        return build_mod.BuildSummary()

    monkeypatch.setattr(build_mod, "build_index", fake_build)
    monkeypatch.setattr(geovec, "load_model", lambda name=None: FakeGeoModel())
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "one.png")  # a folder without images is a usage error
    r = CliRunner().invoke(app, ["index", "build", str(tmp_path), "--db", str(tmp_path / "db"), "--ray", "auto",
                                 "--ray-concurrency", "3", "--chip-size", "512", "--overlap", "64", "--bands", "4,3,2"])
    assert r.exit_code == 0, r.output
    assert seen["ray_address"] == "auto" and seen["ray_options"]["concurrency"] == 3
    assert seen["spec"] == ChipSpec(512, 64, (4, 3, 2))
    r = CliRunner().invoke(app, ["index", "build", str(tmp_path), "--db", str(tmp_path / "db"), "--overlap", "600"])
    assert r.exit_code != 0 and "overlap" in r.output
