"""Issue 26, item 6: every command given a missing or wrong --db / input path exits 2 with one line and writes
nothing; `index build` and `embed` print progress lines when stderr is not a terminal; `index export --format`."""

import json

import pytest
import shapely
from typer.testing import CliRunner

from geovec.cli import app
from geovec.index.build import build_index
from geovec.index.chips import ChipSpec
from geovec.index.store import ChipStore

runner = CliRunner()


def _one_line_usage_error(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def _bad_dbs(tmp_path):
    not_index = tmp_path / "notes"
    not_index.mkdir()
    (not_index / "todo.txt").write_text("x")
    a_file = tmp_path / "file.db"
    a_file.write_text("x")
    return {"missing": tmp_path / "typo.lancedb", "not an index": not_index, "a file": a_file}


@pytest.mark.parametrize("bad", ["missing", "not an index", "a file"])
@pytest.mark.parametrize("command", [
    ["index", "info"], ["index", "export", "--out", "{out}"], ["index", "export", "--format", "geojson", "--out",
                                                                  "{out}"],
    ["index", "repair"], ["search", "--text", "a river"], ["serve", "--port", "0"],
])
def test_a_wrong_db_is_one_line_exit_2_and_writes_nothing(tmp_path, fake, command, bad):
    db = _bad_dbs(tmp_path)[bad]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    out = tmp_path / "out.parquet"
    args = [a.replace("{out}", str(out)) for a in command] + ["--db", str(db)]
    line = _one_line_usage_error(runner.invoke(app, args))
    assert str(db) in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no index, no export, no lock file
    assert fake.items_embedded == 0


def test_index_build_of_a_missing_path_writes_no_index(scenes, tmp_path, fake):
    db = tmp_path / "db"
    line = _one_line_usage_error(runner.invoke(app, ["index", "build", str(scenes), str(tmp_path / "nope.tif"),
                                                     "--db", str(db)]))
    assert "nope.tif does not exist" in line and not db.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_usage_error(runner.invoke(app, ["index", "build", str(empty), "--db", str(db)]))
    assert "no image files" in line and not db.exists()
    for bad, db in _bad_dbs(tmp_path).items():
        if bad != "missing":
            _one_line_usage_error(runner.invoke(app, ["index", "build", str(scenes), "--db", str(db)]))
    assert fake.items_embedded == 0


def test_embed_of_a_missing_file_writes_no_parquet(scenes, tmp_path, fake):
    out = tmp_path / "emb.parquet"
    line = _one_line_usage_error(runner.invoke(app, ["embed", str(scenes / "utm31.tif"), str(tmp_path / "gone.tif"),
                                                     "--out", str(out)]))
    assert "gone.tif does not exist" in line
    assert not out.exists() and not (tmp_path / "emb.parquet.partial").exists() and fake.items_embedded == 0
    # inputs that all fail: reported (exit 1), and still no 0-row parquet
    (tmp_path / "bad.png").write_bytes(b"not a png")
    r = runner.invoke(app, ["embed", str(tmp_path / "bad.png"), "--out", str(out)])
    assert r.exit_code == 1 and "bad.png" in r.stderr and not out.exists()


def test_build_and_embed_print_progress_lines_off_a_terminal(scenes, tmp_path, fake):
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(tmp_path / "db"), "--chip-size", "64",
                            "--commit-every", "4"])
    assert r.exit_code == 0, r.output
    n = len(ChipStore(tmp_path / "db"))
    progress = [ln for ln in r.stderr.splitlines() if ln.startswith("index: ")]
    assert progress and progress[-1].startswith(f"index: {n}/{n} chips (100%)") and "chips/s" in progress[-1]
    r = runner.invoke(app, ["embed", str(scenes), "--out", str(tmp_path / "e.parquet")])
    assert r.exit_code == 0, r.output
    assert any(ln.startswith("embed: 4/4 items (100%)") for ln in r.stderr.splitlines()), r.stderr


def test_progress_lines_come_every_few_seconds():
    import io

    from geovec.progress import Progress

    stream = io.StringIO()
    with Progress(10, "index", "chip", every_s=0.0, stream=stream) as bar:
        for _ in range(5):
            bar.update(2)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("index: 2/10 chips (20%)") and "ETA" in lines[0]
    assert lines[-1].startswith("index: 10/10 chips (100%)") and len(lines) == 6
    silent = io.StringIO()
    with Progress(10, "index", "chip", enabled=False, stream=silent) as bar:
        bar.update(10)
    assert silent.getvalue() == ""


def test_index_export_format_geojson(scenes, tmp_path, fake):
    build_index([scenes], tmp_path / "db", fake, ChipSpec(64), progress=False)
    n = len(ChipStore(tmp_path / "db"))
    for args, out in ((["--format", "geojson"], tmp_path / "a.json.txt"), ([], tmp_path / "b.geojson")):
        r = runner.invoke(app, ["index", "export", "--db", str(tmp_path / "db"), "--out", str(out), *args])
        assert r.exit_code == 0, r.output
        doc = json.loads(out.read_text())
        assert doc["type"] == "FeatureCollection" and len(doc["features"]) == n
        geo = [f for f in doc["features"] if f["geometry"]]
        assert geo and all(shapely.geometry.shape(f["geometry"]).is_valid for f in geo)
        assert {"path", "window_col", "centre_lat", "nodata_fraction"} <= set(doc["features"][0]["properties"])
    r = runner.invoke(app, ["index", "export", "--db", str(tmp_path / "db"), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 0 and "(geoparquet)" in r.output
    line = _one_line_usage_error(runner.invoke(app, ["index", "export", "--db", str(tmp_path / "db"), "--out",
                                                     str(tmp_path / "d.x"), "--format", "shapefile"]))
    assert "geoparquet, geojson" in line and not (tmp_path / "d.x").exists()
