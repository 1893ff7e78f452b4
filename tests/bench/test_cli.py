import json

from tests.bench.formats import write_caption_dataset
from typer.testing import CliRunner

from geovec.cli import app


def test_bench_list():
    r = CliRunner().invoke(app, ["bench", "--list", "--suite", "rsmeb-dev"])
    assert r.exit_code == 0, r.output
    assert "dev-mosaic-referring" in r.output and "AID-scene" not in r.output


def test_bench_runs_tasks_with_the_chance_baseline(tmp_path):
    entries = [(f"s_{i}.jpg", "test", [f"caption {i} a .", f"caption {i} b ."]) for i in range(3)]
    write_caption_dataset(tmp_path / "data" / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    args = ["bench", "--tasks", "RSICD-retrieval,AID-scene", "--model", "chance", "--data-root",
            str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    folder = tmp_path / "out" / "chance" / "seed0-d64"
    assert json.loads((folder / "RSICD-retrieval.json").read_text())["status"] == "ok"
    assert json.loads((folder / "AID-scene.json").read_text())["status"] == "not run"
    assert "AID-scene: not run (AID not found" in r.output
    assert (folder / "summary.md").exists()


def test_bench_needs_suite_or_tasks(tmp_path):
    r = CliRunner().invoke(app, ["bench", "--model", "chance", "--data-root", str(tmp_path)])
    assert r.exit_code != 0 and "--suite or --tasks" in r.output
    r = CliRunner().invoke(app, ["bench", "--tasks", "nope", "--data-root", str(tmp_path)])
    assert r.exit_code != 0 and "unknown task" in r.output
