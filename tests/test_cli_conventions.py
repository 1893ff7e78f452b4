"""One CLI convention over every sub-command: ``-h``, ``--version``, ``--out`` for every output, ``--format
table|json`` wherever results are printed, the shared exit codes in every ``--help``; tables in a pipe keep
whole paths; ``--near`` that looks swapped is an error (|lat| > 90) or a warning."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from geovec import exitcodes
from geovec.cli import app
from tests.bench.formats import write_caption_dataset

runner = CliRunner()
OUTPUT_NAMES = {"--output", "--output-dir", "--geoparquet"}  # older names: each must sit beside --out
POSITIONAL_OUTPUTS = {"output", "out_dir", "cache_dir"}
# commands whose job is to print results: each takes --format table|json
PRINTS_RESULTS = {"demo", "embed", "info", "bench", "search", "export onnx", "index build", "index info"}
# commands that write a file or folder named by the user (the index of `index build` / `demo` is --db, read and
# extended like every other --db)
WRITES = {"embed", "export-merged", "bench", "search", "export onnx", "train", "train build-data",
          "train cache-features", "train dev-eval", "train export", "index export"}


def _commands():
    root = typer.main.get_command(app)

    def walk(cmd, path):
        yield " ".join(path), cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    return list(walk(root, []))


def _opts(cmd) -> set[str]:
    return {o for p in cmd.params for o in list(getattr(p, "opts", [])) + list(getattr(p, "secondary_opts", []))}


def test_every_sub_command_follows_the_convention():
    commands = _commands()
    names = {n for n, _ in commands}
    assert PRINTS_RESULTS <= names and WRITES <= names and len(names) >= 20
    assert runner.invoke(app, ["--version"]).output.strip().startswith("geovec 0.")
    for name, cmd in commands:
        argv = name.split() if name else []
        for flag in ("-h", "--help"):
            res = runner.invoke(app, argv + [flag])
            assert res.exit_code == 0 and "Usage" in res.output, (name, flag, res.output[-500:])
        assert "Exit codes: 0 done; 1" in " ".join(res.output.split()), name  # the shared exit codes, every help
        opts = _opts(cmd)
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option" and set(p.opts) & OUTPUT_NAMES:
                assert "--out" in p.opts, (name, p.opts)
            if getattr(p, "param_type_name", "") == "argument" and p.name in POSITIONAL_OUTPUTS:
                assert "--out" in opts, (name, p.name)
        if name in WRITES:
            assert "--out" in opts and "-o" in opts, (name, sorted(opts))
        if name in PRINTS_RESULTS:
            fmt = next(p for p in cmd.params if "--format" in getattr(p, "opts", []))
            assert "-f" in fmt.opts and fmt.default == "table", name
            for good in ("table", "json"):
                assert fmt.process_value(None, good) == good
            with pytest.raises(Exception, match="--format must be one of"):
                fmt.process_value(None, "yaml")
    res = runner.invoke(app, ["info", "--format", "yaml"])
    assert res.exit_code == exitcodes.USAGE and "--format must be one of" in res.output


def test_a_positional_output_is_also_out(tmp_path):
    write_caption_dataset(tmp_path / "caps", "imgs", "dataset.json",
                          [("airport_1.jpg", "train", ["three planes are parked on an airport .", "a runway ."])])
    vqa_gen = ["data", "vqa-gen", "--captions", str(tmp_path / "caps" / "dataset.json"),
               "--images", str(tmp_path / "caps" / "imgs")]
    a, b = tmp_path / "a", tmp_path / "b"
    res = runner.invoke(app, [*vqa_gen, str(a)])
    assert res.exit_code == 0 and (a / "VQA_split_train_questions.json").exists(), res.output
    res = runner.invoke(app, [*vqa_gen, "--out", str(b)])
    assert res.exit_code == 0 and (b / "VQA_split_train_questions.json").exists(), res.output
    res = runner.invoke(app, [*vqa_gen, str(a), "--out", str(b)])
    assert res.exit_code == exitcodes.USAGE and "give the output once" in res.output
    res = runner.invoke(app, vqa_gen)
    assert res.exit_code == exitcodes.USAGE and "--out" in res.output


@pytest.fixture(scope="module")
def long_index(tmp_path_factory):
    """An index of the fake model's scenes (~52 N 6 E) under a long folder name."""
    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from tests.index.geovec_fake_model import FakeGeoModel, make_scenes

    base = tmp_path_factory.mktemp("cli")
    scenes = make_scenes(base / ("a-rather-long-folder-name-for-the-scenes-of-this-archive-" * 3).rstrip("-"))
    build_index([scenes], base / "db", FakeGeoModel(), ChipSpec(128), progress=False)
    return base / "db", scenes


@pytest.fixture
def fake_model(monkeypatch):
    import geovec
    from tests.index.geovec_fake_model import FakeGeoModel

    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: FakeGeoModel())


def test_tables_keep_whole_paths_and_json_prints_results(long_index, fake_model, tmp_path):
    db, scenes = long_index
    res = runner.invoke(app, ["search", "--db", str(db), "--text", "fields", "-k", "3"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("# 3 result(s)") and lines[1].split("\t")[:3] == ["#", "score", "path"]
    paths = [line.split("\t")[2] for line in lines[2:]]
    assert len(paths) == 3 and all(p.startswith(str(scenes)) and len(p) > 150 for p in paths)  # not cut
    out = tmp_path / "hits.tsv"
    assert runner.invoke(app, ["search", "--db", str(db), "--text", "fields", "--out", str(out)]).exit_code == 0
    assert str(scenes) in out.read_text()
    hits = json.loads(runner.invoke(app, ["search", "--db", str(db), "--text", "fields", "-f", "json"]).stdout)
    assert len(hits) == 10 and hits[0]["path"].startswith(str(scenes))
    doc = json.loads(runner.invoke(app, ["index", "info", "--db", str(db), "--format", "json"]).stdout)
    assert doc["model_id"] == "fake-geo" and doc["rows"] > 0
    table = runner.invoke(app, ["index", "info", "--db", str(db)]).stdout
    assert table.splitlines()[1] == "field\tvalue" and "fake-geo" in table


def test_near_that_looks_swapped(long_index, fake_model):
    db, _ = long_index
    res = runner.invoke(app, ["search", "--db", str(db), "--near", "95,6", "-k", "1"])
    assert res.exit_code == exitcodes.USAGE and "LAT,LON" in res.output and "--near 6,95" in res.output
    res = runner.invoke(app, ["search", "--db", str(db), "--near", "6.0,52.0", "-k", "1"])  # lon,lat by mistake
    assert res.exit_code == 0 and "warning" in res.stderr and "did you swap them" in res.stderr
    res = runner.invoke(app, ["search", "--db", str(db), "--near", "52.0,6.0", "-k", "1"])
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_export_onnx_json_keeps_stdout_one_document(tmp_path):
    """With --format json the progress lines go to stderr and stdout is the JSON summary alone."""
    res = runner.invoke(app, ["export", "onnx", "geovec-compact", str(tmp_path / "onnx"), "--no-check",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["dir"] == str(tmp_path / "onnx") and "encoder" in doc["graphs"]
    assert "graphs encoder" in res.stderr and (tmp_path / "onnx" / "manifest.json").exists()
