"""Regression tests of issue 12 for `geovec embed`: one bad file never loses the batch (5, 6, 7), reruns keep
earlier rows (8), ids stay unique (9), one exit-code convention (10), usage errors exit 2 (11)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from geovec.embed import EmbedJob, iter_records
from tests.conftest import scene
from tests.hostile import write_bomb, write_corrupt_jpg, write_nan_tiff, write_sparse_big_tiff
from tests.index.geovec_fake_model import FakeGeoModel

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(scene(i, 32)).save(d / f"s{i}.png")
    return d


def ids_of(path):
    return pq.read_table(path)["id"].to_pylist()


def embed(*args):
    return runner.invoke(app, ["embed", *map(str, args)])


# --- 5 / 6 / 7: one bad file is one failed row --------------------------------------------------------------
def test_bomb_huge_tiff_and_nan_raster_fail_by_name_the_rest_is_written(fake, folder, tmp_path):
    write_bomb(folder / "bomb.png")
    write_sparse_big_tiff(folder / "huge.tif")
    write_nan_tiff(folder / "nan.tif")
    write_corrupt_jpg(folder / "corrupt.jpg")
    out = tmp_path / "o.parquet"
    r = embed(folder, "--out", out)
    assert r.exit_code == 1, r.output
    for name, why in (("bomb.png", "too large"), ("huge.tif", "megapixels"), ("nan.tif", "no valid pixel"),
                      ("corrupt.jpg", "cannot decode")):
        assert any(name in line and why in line for line in r.output.splitlines()), (name, r.output)
    assert sorted(ids_of(out)) == sorted(str(folder / f"s{i}.png") for i in range(3))
    assert "4 failed" in r.output
    # --max-image-mp sets the limit (here below the 32x32 image)
    r = embed(folder / "s0.png", "--out", tmp_path / "small.parquet", "--max-image-mp", "0.0005")
    assert r.exit_code == 1 and "megapixels" in r.output


# --- 8: a rerun with other inputs keeps the earlier rows ---------------------------------------------------------
def test_rerun_to_the_same_out_keeps_every_earlier_row(fake, folder, tmp_path):
    out = tmp_path / "o.parquet"
    assert embed(folder / "s0.png", folder / "s1.png", "--out", out).exit_code == 0
    first = pq.read_table(out).to_pylist()
    r = embed(folder / "s2.png", "--out", out)
    assert r.exit_code == 0, r.output
    assert "kept 2 row(s) of earlier runs" in r.output and "(3 rows)" in r.output
    rows = pq.read_table(out).to_pylist()
    assert rows[:2] == first and rows[2]["id"] == str(folder / "s2.png")  # appended, earlier rows untouched
    # the same inputs again: nothing embedded, nothing lost
    r = embed(folder / "s1.png", "--out", out)
    assert "embedded 0 new, 1 already done" in r.output and len(ids_of(out)) == 3
    # --no-resume replaces --out with this run's rows
    r = embed(folder / "s2.png", "--out", out, "--no-resume")
    assert r.exit_code == 0 and ids_of(out) == [str(folder / "s2.png")]


def test_out_of_another_model_is_a_usage_error(fake, folder, tmp_path, monkeypatch):
    out = tmp_path / "o.parquet"
    assert embed(folder / "s0.png", "--out", out).exit_code == 0
    other = FakeGeoModel(name="other")
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: other)
    r = embed(folder / "s1.png", "--out", out)
    assert r.exit_code == 2 and "fake-geo@test" in r.output and "Traceback" not in r.output
    assert ids_of(out) == [str(folder / "s0.png")]
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    r = embed(folder / "s1.png", "--out", tmp_path / "junk.parquet")
    assert r.exit_code == 2 and "not a parquet file" in r.output


# --- 9: ids stay unique -----------------------------------------------------------------------------------------
def test_the_same_file_twice_is_embedded_once(fake, folder, tmp_path, monkeypatch):
    out = tmp_path / "o.parquet"
    monkeypatch.chdir(folder)
    r = embed(folder / "s0.png", "s0.png", folder, folder / "s1.png", "--out", out)
    assert r.exit_code == 0, r.output
    ids = ids_of(out)
    assert len(ids) == len(set(ids)) == 3 and fake.items_embedded == 3


def test_a_repeated_jsonl_id_fails_naming_both_lines(fake, tmp_path):
    src = tmp_path / "items.jsonl"
    lines = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "a", "text": "three"}]
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    other = tmp_path / "more.jsonl"
    other.write_text(json.dumps({"id": "b", "text": "again"}) + "\n")
    out = tmp_path / "o.parquet"
    r = embed(src, other, src, "--out", out)  # src listed twice: read once
    assert r.exit_code == 1
    assert f"{src}:3: id 'a' is already used by {src}:1" in r.output
    assert f"{other}:1: id 'b' is already used by {src}:2" in r.output
    rows = {x["id"]: x for x in pq.read_table(out).to_pylist()}
    assert sorted(rows) == ["a", "b"]
    assert np.allclose(rows["a"]["embedding"], fake.encode(["one"])[0], atol=1e-6)  # the first line wins
    # the records API has the same rule
    recs = list(iter_records([src]))
    assert [r.id for r in recs] == ["a", "b", f"{src}:3"] and recs[2].problem


def test_embed_job_refuses_duplicate_ids_given_directly(tmp_path):
    from geovec.embed import Record

    recs = [Record("x", "s", "one"), Record("x", "s", "two"), Record("y", "s", "three")]
    s = EmbedJob(FakeGeoModel(), tmp_path / "o.parquet").run(recs, progress=False)
    assert s.embedded == 2 and list(s.failed) == ["x (repeated)"] and ids_of(tmp_path / "o.parquet") == ["x", "y"]


# --- 10 / 11: exit codes and usage errors -------------------------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["--batch-size", "0"], "--batch-size"),
    (["--chunk-size", "0"], "--chunk-size"),
    (["--task", "bogus"], "unknown task 'bogus'"),
    (["--max-image-mp", "-1"], "--max-image-mp"),
    (["--threads", "0"], "--threads"),
])
def test_usage_errors_exit_2_with_a_usage_message(fake, folder, tmp_path, args, words):
    r = embed(folder, "--out", tmp_path / "o.parquet", *args)
    assert r.exit_code == 2, r.output
    assert "Usage" in r.output and words in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.parquet").exists() and fake.items_embedded == 0


def test_exit_codes_are_documented_and_consistent(fake, folder, tmp_path):
    assert embed(folder, "--out", tmp_path / "ok.parquet").exit_code == 0
    (folder / "bad.png").write_bytes(b"nope")
    assert embed(folder, "--out", tmp_path / "some.parquet").exit_code == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert embed(empty, "--out", tmp_path / "none.parquet").exit_code == 2
    for cmd in (["embed", "--help"], ["index", "build", "--help"]):
        text = " ".join(runner.invoke(app, cmd).output.split())
        assert "Exit codes: 0 all done; 1 finished but some inputs failed" in text.replace("│", "").replace("  ", " ")


def test_killed_between_writing_out_and_removing_the_shards(folder, tmp_path):
    """The one moment random kills rarely hit: --out is written, <out>.partial/ still holds its shards."""
    import shutil

    records = list(iter_records([folder]))
    out = tmp_path / "o.parquet"
    job = EmbedJob(FakeGeoModel(), out, chunk_size=1)
    job.run(records[:2], progress=False)
    partial = tmp_path / "o.parquet.partial"
    partial.mkdir()
    shutil.copy(out, partial / "shard-000003.parquet")  # the same rows again, as a left-over shard (with a gap)
    (partial / ".shard-000004.tmp").write_bytes(b"half a shard")
    s = EmbedJob(FakeGeoModel(), out, chunk_size=1).run(records, progress=False)
    assert s.embedded == 1 and s.skipped_done == 2
    assert ids_of(out) == [r.id for r in records] and not partial.exists()  # no twins, input order
