"""Issue 26, item 7: commands that only read an index (search, index info, index export) open it with the Lance
dataset alone (:class:`ReadOnlyChipStore`, no lancedb import) and get exactly what the LanceDB store gives."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geovec.cli import app
from geovec.index.build import build_index
from geovec.index.chips import ChipSpec
from geovec.index.export import export_geojson, export_geoparquet
from geovec.index.search import RESULT_COLUMNS, SearchQuery, embed_query, query_vector, search_vector
from geovec.index.store import TABLE, ChipStore, IndexInfo, ReadOnlyChipStore, chip_schema
from tests.index.geovec_fake_model import DIM, FakeGeoModel, make_scenes, write_dateline_scenes

REPO = Path(__file__).resolve().parents[2]
GULF_OF_GUINEA = (-5.0, -3.0, 8.0, 6.0)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """An index of the Dutch scenes and of two rasters straddling the antimeridian, 32-px chips."""
    d = tmp_path_factory.mktemp("ro")
    model = FakeGeoModel()
    build_index([make_scenes(d / "scenes"), write_dateline_scenes(d / "dateline")], d / "db", model, ChipSpec(32),
                progress=False)
    return d / "db"


def _vec(text: str) -> np.ndarray:
    return FakeGeoModel().encode([{"text": text}], show_progress_bar=False)[0]


def _same_hits(db, vector, query):
    """search_vector through LanceDB and through Lance: the same chips, in the same order, with the same scores."""
    via_lancedb = search_vector(ChipStore(db), vector, query)
    via_lance = search_vector(ReadOnlyChipStore(db), vector, query)
    assert [h.id for h in via_lance] == [h.id for h in via_lancedb]
    assert [h.rank for h in via_lance] == [h.rank for h in via_lancedb]
    np.testing.assert_allclose([h.score for h in via_lance], [h.score for h in via_lancedb], atol=1e-6, rtol=0)
    assert [h.to_dict() | {"score": 0} for h in via_lance] == [h.to_dict() | {"score": 0} for h in via_lancedb]
    return via_lance


@pytest.mark.parametrize("k", [1, 10, 500])
def test_text_vector_search_matches_lancedb(db, k):
    hits = _same_hits(db, _vec("solar farm"), SearchQuery(text="solar farm", k=k))
    assert len(hits) == min(k, len(ChipStore(db)))


def test_bbox_prefilters_match_lancedb_also_across_the_antimeridian(db):
    vec = _vec("harbour")
    inside_nl = _same_hits(db, vec, SearchQuery(text="harbour", bbox=(5.9, 51.9, 6.1, 52.1), k=500))
    assert inside_nl and all(5 < h.centre_lon < 7 for h in inside_nl)
    across = _same_hits(db, vec, SearchQuery(text="harbour", bbox=(179.0, -5.0, -179.0, 5.0), k=500))
    assert len(across) == 3 * 2 + 3 * 1  # every dateline chip, none of the Dutch ones
    assert not _same_hits(db, vec, SearchQuery(text="harbour", bbox=GULF_OF_GUINEA, k=500))


def test_near_within_filter_and_where_scans_match_lancedb(db):
    q = SearchQuery(text="farm", near=(52.03, 5.95), within_km=3.0, k=5)
    hits = _same_hits(db, embed_query(FakeGeoModel(), q), q)
    assert hits and all(h.distance_km <= 3.0 for h in hits)
    where = "centre_lat > 51.9 AND path LIKE '%utm3%'"
    a, b = ChipStore(db).column("id", "path", where=where), ReadOnlyChipStore(db).column("id", "path", where=where)
    assert 0 < b.num_rows < len(ChipStore(db)) and sorted(b["id"].to_pylist()) == sorted(a["id"].to_pylist())
    assert ReadOnlyChipStore(db).file_signatures() == ChipStore(db).file_signatures()


def test_like_reads_the_same_stored_vector_and_finds_the_same_chips(db):
    lancedb_store, lance_store = ChipStore(db), ReadOnlyChipStore(db)
    chip_id = lancedb_store.column("id")["id"][7].as_py()
    assert np.array_equal(lance_store.vector(chip_id), lancedb_store.vector(chip_id))
    q = SearchQuery(like=chip_id, k=6)
    hits = _same_hits(db, query_vector(lance_store, None, q), q)
    assert hits[0].id == chip_id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="no chip with id"):
        lance_store.vector("nowhere.tif#0,0,32,32")


def test_searches_match_lancedb_with_an_ann_index(tmp_path):
    """2,000 chips: 22 IVF partitions, more than the 20 probed, so nprobes, ef and the refinement all matter."""
    rng = np.random.default_rng(0)
    n = 2000
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lon, lat = rng.uniform(-180, 180, n), rng.uniform(-60, 60, n)
    schema = chip_schema(DIM)
    rows = pa.table({
        "id": [f"s{i // 100}.tif#{i % 100 * 32},0,32,32" for i in range(n)], "path": [f"s{i // 100}.tif" for i in range(n)],
        "window_col": [i % 100 * 32 for i in range(n)], "window_row": [0] * n, "window_width": [32] * n,
        "window_height": [32] * n, "bands": [None] * n, "min_lon": lon - 0.1, "min_lat": lat - 0.1,
        "max_lon": np.minimum(lon + 0.1, 180), "max_lat": lat + 0.1, "centre_lat": lat, "centre_lon": lon,
        "footprint": [None] * n, "datetime": [None] * n, "model_id": ["fake-geo"] * n, "file_sig": ["x"] * n,
        "nodata_fraction": [0.0] * n,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
    }, schema=schema)
    store = ChipStore.create(tmp_path / "db", IndexInfo(model_id="fake-geo", revision="test", dimension=DIM))
    store.add(rows)
    assert store.ensure_indices(force=True)
    assert ReadOnlyChipStore(tmp_path / "db").has_vector_index() and ChipStore(tmp_path / "db").has_vector_index()
    for i in range(5):
        q = vectors[i * 37] + 0.3 * rng.standard_normal(DIM).astype(np.float32)
        _same_hits(tmp_path / "db", q, SearchQuery(text="x", k=10))
        _same_hits(tmp_path / "db", q, SearchQuery(text="x", k=10, exact=True))
        _same_hits(tmp_path / "db", q, SearchQuery(text="x", k=25, bbox=(-60.0, -30.0, 60.0, 30.0)))
        _same_hits(tmp_path / "db", q, SearchQuery(text="x", k=10, bbox=(150.0, -60.0, -150.0, 60.0)))


def test_exports_are_the_same_through_either_store(db, tmp_path):
    for store, name in ((ChipStore(db), "lancedb"), (ReadOnlyChipStore(db), "lance")):
        export_geoparquet(store, tmp_path / f"{name}.parquet")
        export_geojson(store, tmp_path / f"{name}.geojson")
    assert pq.read_table(tmp_path / "lance.parquet").equals(pq.read_table(tmp_path / "lancedb.parquet"))
    gj = json.loads((tmp_path / "lance.geojson").read_text())
    assert gj == json.loads((tmp_path / "lancedb.geojson").read_text()) and len(gj["features"]) == len(ChipStore(db))


def test_index_info_reports_duplicate_ids_read_only(db, tmp_path):
    import shutil

    dup_db = tmp_path / "dup"
    shutil.copytree(db, dup_db)
    store = ChipStore(dup_db)
    store.table.add(store.table.to_arrow().slice(3, 4))  # what two unlocked writers used to leave behind
    expected = ChipStore(dup_db).duplicate_ids()
    assert len(expected) == 4 and ReadOnlyChipStore(dup_db).duplicate_ids() == expected
    r = CliRunner().invoke(app, ["index", "info", "--db", str(dup_db), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["duplicate_ids"], doc["duplicate_rows"], doc["rows"]) == (4, 4, len(store))
    assert "index repair" in r.stderr


def test_read_only_store_sees_the_version_committed_when_opened(db, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(db, copy)
    before = ReadOnlyChipStore(copy)
    n = len(before)
    writer = ChipStore(copy)
    writer.table.delete("path LIKE '%merc.tif'")
    assert len(before) == n and before.to_arrow().num_rows == n  # a consistent snapshot while another writes
    assert len(ReadOnlyChipStore(copy)) == len(writer) < n


def test_an_index_without_a_table_reads_as_empty_and_stays_unwritten(tmp_path):
    from dataclasses import asdict

    (tmp_path / "geovec_index.json").write_text(json.dumps(asdict(IndexInfo("fake-geo", "test", DIM))))
    store = ReadOnlyChipStore(tmp_path)
    assert len(store) == 0 and store.ids() == set() and not store.has_vector_index() and not store.duplicate_ids()
    assert search_vector(store, _vec("x"), SearchQuery(text="x")) == []
    near = store.nearest(_vec("x"), RESULT_COLUMNS, 5, None, metric="cosine", exact=False, ef=100, refine_factor=5,
                         nprobes=20)
    assert near.num_rows == 0 and near.column_names == RESULT_COLUMNS
    assert store.column("id", "path").num_rows == 0 and store.to_arrow().schema == chip_schema(DIM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geovec_index.json"]


def test_a_broken_table_is_one_line_exit_2(tmp_path):
    db = tmp_path / "db"
    ChipStore.create(db, IndexInfo(model_id="fake-geo", revision="test", dimension=DIM))
    import shutil

    shutil.rmtree(db / f"{TABLE}.lance")
    (db / f"{TABLE}.lance").mkdir()
    (db / f"{TABLE}.lance" / "junk").write_text("x")
    for args in (["index", "info"], ["search", "--like", "a.tif#0,0,1,1"],
                 ["index", "export", "--out", str(tmp_path / "x.parquet")]):
        r = CliRunner().invoke(app, [*args, "--db", str(db)])
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and str(db) in lines[0], (args, r.output)
    assert not (tmp_path / "x.parquet").exists()


def test_read_only_commands_do_not_import_lancedb(db, tmp_path):
    """In a fresh process: search (text through the index's model, and --like), index info and index export."""
    chip_id = ReadOnlyChipStore(db).column("id")["id"][0].as_py()
    script = f"""
import json, sys
import geovec
from tests.index.geovec_fake_model import FakeGeoModel
geovec.load_model = lambda name=None: FakeGeoModel()
from geovec.cli import app
db = {str(db)!r}
out = []
for args in (["search", "--db", db, "--text", "solar farm", "--bbox", "5.9,51.9,6.1,52.1", "--format", "json"],
             ["search", "--db", db, "--like", {chip_id!r}, "-k", "3", "--format", "json"],
             ["index", "info", "--db", db, "--format", "json"],
             ["index", "export", "--db", db, "--out", {str(tmp_path / "x.geojson")!r}]):
    try:
        app(args, standalone_mode=False)
    except SystemExit as e:
        out.append(e.code)
print(json.dumps({{"lancedb": "lancedb" in sys.modules, "lance": "lance" in sys.modules, "exits": out}}))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"})
    assert r.returncode == 0, r.stderr[-2000:]
    status = json.loads(r.stdout.strip().splitlines()[-1])
    assert status == {"lancedb": False, "lance": True, "exits": []}, r.stdout[-2000:]
    assert len(json.loads((tmp_path / "x.geojson").read_text())["features"]) == len(ReadOnlyChipStore(db))
