"""Issue 26, item 4: concurrent writers never duplicate a chip (a write lock on the index, rows merged on the chip
id); `geovec index info` reports duplicated ids and `geovec index repair` removes them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from geovec.index.build import build_index
from geovec.index.chips import ChipSpec
from geovec.index.store import ChipStore, IndexLockedError, write_lock
from tests.index.geovec_fake_model import FakeGeoModel, write_geotiff

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# a `geovec` whose model is the fake one, a little slow per batch so that two builds overlap
SLOW_GEOVEC = """
import sys, time
import geovec
from tests.index.geovec_fake_model import FakeGeoModel

class Slow(FakeGeoModel):
    def embed_prepared(self, prepared):
        time.sleep(0.05)
        return super().embed_prepared(prepared)

geovec.load_model = lambda *a, **k: Slow()
from geovec.cli import main
sys.argv = ["geovec"] + sys.argv[1:]
main()
"""


@pytest.fixture
def rasters(tmp_path):
    d = tmp_path / "rasters"
    d.mkdir()
    for i in range(3):
        write_geotiff(d / f"scene{i}.tif", 192, 192, "EPSG:32631", (600_000 + 2_000 * i, 5_800_000), 10.0, seed=i)
    return d


def _geovec(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-c", SLOW_GEOVEC, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_builds_into_one_index_store_every_chip_once(rasters, tmp_path):
    db = tmp_path / "db"
    args = ["index", "build", str(rasters), "--db", str(db), "--chip-size", "32", "--batch-size", "8",
            "--commit-every", "16", "--format", "json"]
    procs = [_geovec(*args), _geovec(*args)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    expected = 3 * 6 * 6
    ids = ChipStore(db).table.to_arrow()["id"].to_pylist()
    assert len(ids) == len(set(ids)) == expected
    # each chip was embedded by exactly one of the two builds: the second saw what the first stored
    embedded = [json.loads(out)["chips_embedded"] for out, _ in outs]
    assert sum(embedded) == expected, (embedded, [err[-400:] for _, err in outs])
    assert not ChipStore(db).duplicate_ids()


def test_a_second_writer_with_a_timeout_fails_with_one_line(rasters, tmp_path, monkeypatch):
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: FakeGeoModel())
    db = tmp_path / "db"
    with write_lock(db):
        holder = subprocess.run([sys.executable, "-c", "from geovec.index.store import write_lock\n"
                                 f"with write_lock({str(db)!r}, timeout=0): pass"],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                                capture_output=True, text=True)
        assert holder.returncode != 0 and "IndexLockedError" in holder.stderr
        with pytest.raises(IndexLockedError, match="being written by another process"):
            build_index([rasters], db, FakeGeoModel(), ChipSpec(32), progress=False, lock_timeout=0.2)


def test_info_reports_injected_duplicates_and_repair_removes_them(rasters, tmp_path):
    db = tmp_path / "db"
    build_index([rasters], db, FakeGeoModel(), ChipSpec(32), progress=False)
    store = ChipStore(db)
    before = store.table.to_arrow()
    n = before.num_rows
    store.table.add(before.slice(10, 7))  # what two unlocked writers used to leave behind
    store.table.add(before.slice(12, 2))
    assert len(ChipStore(db)) == n + 9

    r = runner.invoke(app, ["index", "info", "--db", str(db), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["duplicate_ids"], doc["duplicate_rows"]) == (7, 9)
    assert "7 chip id(s) stored more than once" in r.stderr and "geovec index repair" in r.stderr

    r = runner.invoke(app, ["index", "repair", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "removed 9 duplicate row(s) of 7 chip id(s)" in r.output
    after = ChipStore(db).table.to_arrow()
    assert after.num_rows == n and sorted(after["id"].to_pylist()) == sorted(before["id"].to_pylist())
    vec = {r["id"]: r["vector"] for r in after.select(["id", "vector"]).to_pylist()}
    for row in before.select(["id", "vector"]).to_pylist():
        assert np.allclose(vec[row["id"]], row["vector"])
    r = runner.invoke(app, ["index", "info", "--db", str(db), "--format", "json"])
    assert json.loads(r.stdout)["duplicate_ids"] == 0 and "warning" not in r.stderr
    assert "no duplicate chips" in runner.invoke(app, ["index", "repair", "--db", str(db)]).output


def test_store_add_is_idempotent_on_the_chip_id(rasters, tmp_path):
    db = tmp_path / "db"
    build_index([rasters], db, FakeGeoModel(), ChipSpec(32), progress=False)
    store = ChipStore(db)
    rows = store.table.to_arrow()
    store.add(rows.slice(0, 20).drop_columns([]))
    assert len(store) == rows.num_rows and not store.duplicate_ids()


def test_repair_is_one_delete_per_chunk_and_keeps_every_chip(rasters, tmp_path, monkeypatch):
    """The repair never removes a row before the one it keeps is in place: it only deletes the extra rows, so a
    repair stopped after any chunk leaves every chip id present (here: stopped after the first of several chunks)."""
    db = tmp_path / "db"
    build_index([rasters], db, FakeGeoModel(), ChipSpec(32), progress=False)
    store = ChipStore(db)
    before = store.table.to_arrow()
    store.table.add(before.slice(0, 6))
    ids = set(before["id"].to_pylist())
    calls = []
    real_delete = store.table.delete

    def delete_then_stop(where):
        real_delete(where)
        calls.append(where)
        raise KeyboardInterrupt  # the process is stopped right after its first commit

    monkeypatch.setattr(store.table, "delete", delete_then_stop)
    with pytest.raises(KeyboardInterrupt):
        store.remove_duplicates(chunk=2)
    assert len(calls) == 1 and calls[0].startswith("_rowid IN (")
    after = ChipStore(db)
    assert set(after.table.to_arrow()["id"].to_pylist()) == ids
    assert len(after.duplicate_ids()) == 4  # two of the six repaired, the rest still reported
    assert after.remove_duplicates(chunk=2) == 4 and after.duplicate_ids() == {}
    assert len(after) == before.num_rows
