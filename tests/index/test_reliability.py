"""Regression tests of issue 12 for `geovec index build` / `geovec search`: bombs, huge and all-NaN rasters
never lose the build (5, 6, 7), VRTs are refused (2), one exit-code convention and --prune (10), usage errors
exit 2 (11)."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from geovec.index.build import build_index
from geovec.index.chips import ChipSpec, plan_chips, read_chip
from geovec.index.store import ChipStore
from tests.hostile import (write_bomb, write_corrupt_jpg, write_sparse_big_tiff, write_tiff, write_vrt_as_tif)
from tests.index.geovec_fake_model import FakeGeoModel

runner = CliRunner()
SPEC = ChipSpec(64)


@pytest.fixture
def hostile(scenes, tmp_path):
    """The scenes folder plus a bomb, a corrupt JPEG, a VRT disguised as a TIFF, a huge sparse GeoTIFF and a
    float GeoTIFF whose left half is NaN."""
    write_bomb(scenes / "bomb.png")
    write_corrupt_jpg(scenes / "corrupt.jpg")
    outside = tmp_path / "outside"
    outside.mkdir()
    write_vrt_as_tif(scenes / "evil.tif", write_tiff(outside / "secret.tif", np.full((1, 8, 8), 77, np.uint8)))
    write_sparse_big_tiff(scenes / "huge.tif", 1024, 1024)
    data = np.random.default_rng(0).random((3, 64, 128)).astype(np.float32)
    data[:, :, :64] = np.nan
    write_tiff(scenes / "half_nan.tif", data)
    return scenes


def test_bad_files_are_skipped_by_name_and_the_rest_is_indexed(hostile, tmp_path):
    s = build_index([hostile], tmp_path / "db", FakeGeoModel(), SPEC, progress=False)
    assert set(s.failed) == {str(hostile / n) for n in ("bomb.png", "corrupt.jpg", "evil.tif")}
    assert "too large" in s.failed[str(hostile / "bomb.png")] and "VRT" in s.failed[str(hostile / "evil.tif")]
    paths = {r["path"] for r in ChipStore(tmp_path / "db").table.to_arrow().to_pylist()}
    assert {p.rsplit("/", 1)[1] for p in paths} == {"utm31.tif", "utm32.tif", "merc.tif", "plain.png", "huge.tif",
                                                    "half_nan.tif"}
    # the big GeoTIFF is read chip by chip (16 x 16 windows of 64 px)
    assert s.chips_embedded >= 16 * 16
    # the NaN half of half_nan.tif is one chip with no valid pixel: counted and skipped, not embedded black
    assert s.chips_empty == 1
    ids = ChipStore(tmp_path / "db").table.to_arrow()["id"].to_pylist()
    assert len(ids) == len(set(ids))


def test_png_too_large_to_decode_whole_fails_by_name(scenes, tmp_path, fake):
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(scenes / "large.png")
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(tmp_path / "db"), "--chip-size", "64",
                            "--max-image-mp", "0.05"])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "large.png" in text and "megapixels" in text
    assert "plain.png" not in text  # 150x100 is under the limit


def test_plain_image_is_decoded_once_for_all_its_chips(scenes, monkeypatch):
    import geovec.index.chips as chips_mod

    calls = []
    real = chips_mod.read_image
    monkeypatch.setattr(chips_mod, "read_image", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    plan = plan_chips(scenes / "plain.png", ChipSpec(32))
    assert len(plan) == 20 and all(read_chip(c).pixels.shape[:2] == (c.window[3], c.window[2]) for c in plan)
    assert len(calls) == 1


def test_prune_removes_the_chips_of_deleted_files(scenes, tmp_path, fake):
    db = tmp_path / "db"
    assert runner.invoke(app, ["index", "build", str(scenes), "--db", str(db), "--chip-size", "64"]).exit_code == 0
    before = ChipStore(db).file_signatures()
    (scenes / "merc.tif").unlink()
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(db), "--chip-size", "64"])
    assert r.exit_code == 0 and "1 indexed file(s) no longer exist (--prune" in " ".join(r.output.split())
    assert ChipStore(db).file_signatures().keys() == before.keys()  # listed, not removed
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(db), "--chip-size", "64", "--prune"])
    assert r.exit_code == 0 and "pruned 4 chip(s) of 1 deleted file(s)" in r.output
    assert set(ChipStore(db).file_signatures()) == set(before) - {str(scenes / "merc.tif")}


@pytest.mark.parametrize("args,words", [
    (["--bands", "a,b"], "--bands must be 1-based band numbers"),
    (["--bands", "0,1,2"], "--bands must be 1-based band numbers"),
    (["--batch-size", "0"], "--batch-size"),
    (["--commit-every", "0"], "--commit-every"),
    (["--chip-size", "4"], "--chip-size"),
    (["--overlap", "-1"], "--overlap"),
    (["--max-image-mp", "-2"], "--max-image-mp"),
])
def test_usage_errors_exit_2_with_a_usage_message(scenes, tmp_path, fake, args, words):
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(tmp_path / "db"), *args])
    assert r.exit_code == 2, r.output
    assert "Usage" in r.output and words in " ".join(r.output.split()) and "Traceback" not in r.output
    assert fake.items_embedded == 0 and not (tmp_path / "db").exists()


def test_exit_codes(scenes, tmp_path, fake, monkeypatch):
    db = tmp_path / "db"
    assert runner.invoke(app, ["index", "build", str(scenes), "--db", str(db)]).exit_code == 0
    write_corrupt_jpg(scenes / "corrupt.jpg")
    assert runner.invoke(app, ["index", "build", str(scenes), "--db", str(db)]).exit_code == 1
    other = FakeGeoModel(name="other")
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: other)
    r = runner.invoke(app, ["index", "build", str(scenes), "--db", str(db)])
    assert r.exit_code == 2 and "model_id" in r.output and "Traceback" not in r.output


def test_search_with_a_bomb_image_is_a_clear_error(scenes, tmp_path, fake):
    db = tmp_path / "db"
    build_index([scenes / "merc.tif"], db, fake, SPEC, progress=False)
    bomb = write_bomb(tmp_path / "bomb.png")
    r = runner.invoke(app, ["search", "--db", str(db), "--image", str(bomb)])
    assert r.exit_code == 2 and "bomb.png" in r.output and "too large" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["search", "--db", str(db), "--text", "x", "-k", "0"])
    assert r.exit_code == 2 and "Usage" in r.output
