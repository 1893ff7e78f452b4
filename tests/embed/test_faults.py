"""Fault test: `geovec embed` killed (SIGINT, then SIGKILL) at random points and rerun gives exactly the rows of
a clean run (same ids, order and vectors, no duplicates), with a corrupt file and a decompression bomb in the
input folder reported by name."""

import signal

import pyarrow.parquet as pq
from PIL import Image
from typer.testing import CliRunner

import geovec
from tests.conftest import scene
from tests.faults import check_killed, run_cli, seeded_rng
from tests.hostile import write_bomb, write_corrupt_jpg
from tests.index.geovec_fake_model import FakeGeoModel

ARGS = ["--batch-size", "2", "--chunk-size", "2"]


def test_killed_and_rerun_equals_a_clean_run(tmp_path, monkeypatch):
    rng, seed = seeded_rng()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(scene(i, 16)).save(folder / f"s{i:02d}.png")
    write_corrupt_jpg(folder / "corrupt.jpg")
    write_bomb(folder / "bomb.png")
    n_batches = 5  # 10 good images, 2 per forward pass

    # the clean run, in process
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: FakeGeoModel())
    from geovec.cli import app

    clean = tmp_path / "clean.parquet"
    r = CliRunner().invoke(app, ["embed", str(folder), "--out", str(clean), *ARGS])
    assert r.exit_code == 1, r.output
    expected = pq.read_table(clean).to_pylist()
    assert len(expected) == 10

    out = tmp_path / "out.parquet"
    left = n_batches
    for sig in (signal.SIGINT, signal.SIGKILL):
        # a random point of what is left: before a forward pass, during one, or (k = left) while finishing
        k, delay = rng.randint(0, left), rng.uniform(0, 0.06)
        rc, log = run_cli(["embed", str(folder), "--out", str(out), *ARGS], kill=sig, after_batches=k,
                          extra_delay=delay)
        check_killed(rc, sig, log)
        left = max(0, left - log.count("@@batch"))
        print(f"seed {seed}: {signal.Signals(sig).name} after {k} batches + {delay:.3f}s -> exit {rc}")
    # the rerun that completes (in process: the same CLI code, one process start less)
    r = CliRunner().invoke(app, ["embed", str(folder), "--out", str(out), *ARGS])
    log = r.output
    assert r.exit_code == 1, (seed, log)  # the corrupt file and the bomb, reported by name
    assert "FAILED" in log and "corrupt.jpg" in log and "bomb.png" in log and "too large" in log, (seed, log)
    got = pq.read_table(out).to_pylist()
    assert [g["id"] for g in got] == [e["id"] for e in expected], seed  # none lost, none twice, same order
    assert got == expected, seed  # bit-identical rows
    assert not (tmp_path / "out.parquet.partial").exists()
