"""Fault test: `geovec index build` killed (SIGINT, then SIGKILL) at random points and rerun gives exactly the
chips of a clean build (same ids and vectors, no duplicates), with a corrupt file and a decompression bomb in
the input folder reported by name."""

import signal

import numpy as np
from PIL import Image
from typer.testing import CliRunner

import geovec

from geovec.index.build import build_index
from geovec.index.chips import ChipSpec
from geovec.index.store import ChipStore
from tests.conftest import scene
from tests.faults import check_killed, run_cli, seeded_rng
from tests.hostile import write_bomb, write_corrupt_jpg
from tests.index.geovec_fake_model import FakeGeoModel, write_geotiff

ARGS = ["--chip-size", "16", "--commit-every", "4", "--batch-size", "4"]


def rows(db):
    t = ChipStore(db).table.to_arrow()
    ids = t["id"].to_pylist()
    assert len(ids) == len(set(ids)), "duplicate chips"
    return dict(zip(ids, (np.asarray(v, np.float32) for v in t["vector"].to_pylist())))


def test_killed_and_rerun_equals_a_clean_build(tmp_path, monkeypatch):
    rng, seed = seeded_rng()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(scene(i, 32)).save(folder / f"s{i}.png")
    write_geotiff(folder / "g.tif", 32, 32, "EPSG:32631", (600_000, 5_800_000), 10.0, seed=3)
    write_corrupt_jpg(folder / "corrupt.jpg")
    write_bomb(folder / "bomb.png")
    n_batches = 6  # 24 chips of 16 px, 4 per step

    clean = build_index([folder], tmp_path / "clean", FakeGeoModel(), ChipSpec(16), batch_size=4, commit_every=4,
                        progress=False)
    assert set(clean.failed) == {str(folder / "corrupt.jpg"), str(folder / "bomb.png")}
    expected = rows(tmp_path / "clean")
    assert len(expected) == 24

    db = tmp_path / "db"
    left = n_batches
    for sig in (signal.SIGINT, signal.SIGKILL):
        # a random point of what is left: before a forward pass, during one, or (k = left) while finishing
        k, delay = rng.randint(0, left), rng.uniform(0, 0.06)
        rc, log = run_cli(["index", "build", str(folder), "--db", str(db), *ARGS], kill=sig, after_batches=k,
                          extra_delay=delay)
        check_killed(rc, sig, log)
        left = max(0, left - log.count("@@batch"))
        print(f"seed {seed}: {signal.Signals(sig).name} after {k} batches + {delay:.3f}s -> exit {rc}")
    # the rerun that completes (in process: the same CLI code, one process start less)
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: FakeGeoModel())
    from geovec.cli import app

    r = CliRunner().invoke(app, ["index", "build", str(folder), "--db", str(db), *ARGS])
    log = " ".join(r.output.split())
    assert r.exit_code == 1, (seed, log)
    assert "corrupt.jpg" in log and "bomb.png" in log, (seed, log)
    got = rows(db)
    assert got.keys() == expected.keys(), seed
    assert all(np.array_equal(got[i], expected[i]) for i in expected), seed
