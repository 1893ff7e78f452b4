"""Load stamps (geovec.runtime.load_stamp): a load already checked for a checkpoint, backend and package versions is
not checked again, anything it depends on changing makes a new key, and `geovec info` answers from the stamp
without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from geovec.runtime import load_stamp


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOVEC_CACHE", str(tmp_path / "cache"))
    for k in ("GEOVEC_BACKEND", "GEOVEC_PRECISION"):
        monkeypatch.delenv(k, raising=False)
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 64)
    return d


def test_the_key_changes_with_everything_a_load_depends_on(checkpoint, monkeypatch):
    key = load_stamp.stamp_key(checkpoint, None, None)
    assert key == load_stamp.stamp_key(checkpoint, "auto", "fp32")  # the defaults, spelled out
    assert key != load_stamp.stamp_key(checkpoint, "onnx", None)
    assert key != load_stamp.stamp_key(checkpoint, None, "int8")
    assert key != load_stamp.stamp_key(checkpoint, None, None, export_dir="/some/export")
    monkeypatch.setenv("GEOVEC_BACKEND", "torch")
    assert load_stamp.stamp_key(checkpoint, None, None) == load_stamp.stamp_key(checkpoint, "torch", None)
    monkeypatch.delenv("GEOVEC_BACKEND")
    real = load_stamp._version
    monkeypatch.setattr(load_stamp, "_version", lambda d: "9.9" if d == "onnxruntime" else real(d))
    assert load_stamp.stamp_key(checkpoint, None, None) != key  # another runtime version
    monkeypatch.setattr(load_stamp, "_version", real)
    (checkpoint / "model.safetensors").write_bytes(b"\1" * 65)  # retrained weights
    assert load_stamp.stamp_key(checkpoint, None, None) != key
    (checkpoint / "config.json").unlink()
    assert load_stamp.stamp_key(checkpoint, None, None) is None  # not a checkpoint: no stamp


def test_a_stamp_whose_graph_is_gone_is_not_used(checkpoint, tmp_path):
    key = load_stamp.stamp_key(checkpoint, "onnx", None)
    graph = tmp_path / "head.onnx"
    graph.write_bytes(b"graph")
    path = load_stamp.stamp_path(key)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 1, "runner": {"name": "onnx", "precision": "fp32"},
                                "graphs": {"head": str(graph)}, "summary": {}}))
    assert load_stamp.read_stamp(key)["graphs"] == {"head": str(graph)}
    graph.unlink()
    assert load_stamp.read_stamp(key) is None
    path.write_text("{not json")
    assert load_stamp.read_stamp(key) is None


def _geovec(args, cache, check_torch=False):
    code = ("import sys\nfrom geovec.cli import main\nsys.argv = ['geovec', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOVEC_")}
    env["GEOVEC_CACHE"] = str(cache)
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_info_answers_from_the_stamp_without_torch(tmp_path):
    args = ["--backend", "torch", "info", "--format", "json"]
    first, torch_first = _geovec(args, tmp_path / "cache")
    again, torch_again = _geovec(args, tmp_path / "cache")
    assert torch_first == "torch imported" and torch_again == "no torch"
    assert json.loads(again) == json.loads(first)  # the same answer
    assert json.loads(again)["backend"] == "torch" and json.loads(again)["parameters"]["location"] == 9_449_472
