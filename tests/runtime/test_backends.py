"""Inference backends (ONNX Runtime, OpenVINO) against the torch reference, and the encode pipeline.

The graphs are exported once per test session (through ``geovec export onnx``); each backend's embeddings
of the fixed mixed batch must match torch's. A backend test skips, saying so, only when its runtime is not
installed (``pip install 'geovec[onnx]'`` / ``'geovec[openvino]'``; CI installs both with the dev extra).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import geovec
from geovec.runtime import backends
from geovec.runtime import export as ex
from tests.conftest import scene


def needs(backend: str):
    return pytest.mark.skipif(not backends.installed(backend),
                              reason=f"{backends._MODULE[backend]} is not installed: {backends.EXTRA_HINT[backend]}")


@pytest.fixture(scope="module")
def torch_model():
    return geovec.load_model(backend="torch")


@pytest.fixture(scope="module")
def export_dir(torch_model, tmp_path_factory):
    """`geovec export onnx geovec-compact OUT`, once for the module."""
    if not backends.installed("onnx") and not backends.installed("openvino"):
        pytest.skip(f"no ONNX runtime installed: {backends.EXTRA_HINT['onnx']}")
    from geovec.cli import app

    out = tmp_path_factory.mktemp("onnx-export")
    res = CliRunner().invoke(app, ["export", "onnx", "geovec-compact", str(out)])
    assert res.exit_code == 0, res.output
    return out


def runner_for(model, export_dir, backend, precision="fp32"):
    paths = ex.find_graphs(model, [export_dir])
    assert sorted(paths) == sorted(ex.model_graphs(model)), "every graph exports and matches the checkpoint"
    return backends.RUNNERS[backend](paths, precision=precision)


def test_export_writes_graphs_and_manifest(export_dir, torch_model):
    manifest = json.loads((export_dir / ex.MANIFEST).read_text())
    assert set(manifest["graphs"]) == set(ex.model_graphs(torch_model))
    for g, entry in manifest["graphs"].items():
        assert (export_dir / entry["file"]).stat().st_size > 0
        assert entry["fingerprint"] == ex.fingerprint(torch_model, g)
    for label, report in manifest["faithfulness"].items():
        assert report["passes"], (label, report)


@pytest.mark.parametrize("backend", [pytest.param("onnx", marks=needs("onnx")),
                                     pytest.param("openvino", marks=needs("openvino"))])
def test_backend_matches_torch_on_the_mixed_batch(torch_model, export_dir, backend):
    report = backends.faithfulness(torch_model, runner_for(torch_model, export_dir, backend))
    items = backends.faithfulness_items()
    assert report["n_items"] == len(items) + sum(isinstance(i, str) for i in items)  # + the texts on their own
    assert report["min_cosine"] >= backends.FAITHFUL_COSINE, report


@needs("openvino")
def test_openvino_bf16_is_explicit_and_within_its_own_threshold(torch_model, export_dir):
    runner = runner_for(torch_model, export_dir, "openvino", precision="bf16")
    assert runner.label == "openvino-bf16"
    report = backends.faithfulness(torch_model, runner)
    assert report["min_cosine"] >= backends.REDUCED_COSINE, report
    import openvino as ov

    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert report["min_cosine"] < 0.99999, report  # bf16 really ran (a CPU without it runs f32)


@needs("onnx")
def test_onnx_int8_is_explicit_quantised_and_within_its_own_threshold(torch_model, export_dir):
    import onnx

    from geovec.runtime import quantize

    paths = ex.find_graphs(torch_model, [export_dir])
    prints = {g: ex.fingerprint(torch_model, g) for g in paths}
    qpaths, qprints = quantize.int8_graphs(torch_model, paths, prints)
    ops = {g: {n.op_type for n in onnx.load(str(p)).graph.node} for g, p in qpaths.items()}
    for g in ("global_text", "encoder_text"):
        assert "DynamicQuantizeLinear" in ops[g] and "MatMulInteger" in ops[g], g
        assert qprints[g] != prints.get(g)
    for g in ("vision", "location", "encoder", "head"):
        assert qpaths[g] == paths[g] and qprints[g] == prints[g]  # stay fp32
    runner = backends.RUNNERS["onnx"](qpaths, precision="int8")
    assert runner.label == "onnx-int8"
    report = backends.faithfulness(torch_model, runner)
    assert backends.INT8_COSINE <= report["min_cosine"] < 0.9999, report  # int8 really ran, and held its bar
    again, _ = quantize.int8_graphs(torch_model, paths, prints)
    assert again == qpaths  # cached, not rebuilt
    # text-only batches take the int8 encoder copy, batches with image tokens the fp32 encoder
    m = geovec.load_model(backend="torch")
    backends.attach(m, runner)
    calls = []
    run = runner.run
    runner.run = lambda g, *a: (calls.append(g), run(g, *a))[1]
    m.encode(["a harbour", "two runways"])
    assert "encoder_text" in calls and "encoder" not in calls
    calls.clear()
    m.encode([{"image": backends.synthetic_scene(3, 224, 224), "text": "a harbour"}])
    assert "encoder" in calls and "encoder_text" not in calls


def test_reduced_precision_names_its_backend(torch_model):
    with pytest.raises(ValueError, match="precision='int8' needs backend='onnx'"):
        backends.apply_backend(torch_model, "torch", "int8")
    with pytest.raises(ValueError, match="precision='bf16' needs backend='openvino'"):
        backends.apply_backend(torch_model, "onnx", "bf16")
    with pytest.raises(ValueError, match="unknown precision"):
        backends.apply_backend(torch_model, "onnx", "fp8")
    with pytest.raises(ValueError, match="for int8 use backend='onnx'"):
        backends.OpenVINORunner({}, precision="int8")
    from geovec.cli import app

    res = CliRunner().invoke(app, ["--precision", "int4", "info"])
    assert res.exit_code != 0 and "unknown precision" in res.output


def test_bench_files_reduced_precision_under_its_own_revision(torch_model):
    from geovec.bench.encoders import BenchEncoder

    enc = BenchEncoder(torch_model)
    rev = str(torch_model.revision)
    assert enc.revision == rev
    for label, suffix in (("onnx-int8", "+int8"), ("openvino-bf16", "+bf16"), ("onnx", "")):
        class Fake:
            revision, backend, model_id = rev, label, "m"
        enc.model = Fake()
        assert enc.revision == rev + suffix
    from pathlib import Path

    class Int8:  # a new int8 recipe or weights give new graph files: a new cache namespace
        revision, backend, model_id = rev, "onnx-int8", "m"

        class runner:
            paths = {"vision": Path("/c/vision-aaq8.onnx"), "encoder": Path("/c/encoder-bb.onnx")}
    enc.model = Int8()
    first = enc.namespace
    Int8.runner.paths = {"vision": Path("/c/vision-ccq8.onnx"), "encoder": Path("/c/encoder-bb.onnx")}
    assert first.startswith(f"m@{rev}+int8#") and enc.namespace != first


@needs("onnx")
def test_load_model_auto_uses_the_export_and_info_names_it(export_dir, monkeypatch):
    m = geovec.load_model(backend="auto", export_dir=export_dir)
    assert m.backend == backends.AUTO_ORDER[0]
    assert {p.parent for p in m.runner.paths.values()} == {export_dir}  # found, not exported again
    from geovec.cli import app

    monkeypatch.setenv("GEOVEC_BACKEND", "torch")  # restored after the test (the --backend option sets it)
    out = CliRunner().invoke(app, ["info"]).output
    assert "backend      torch" in out
    out = CliRunner().invoke(app, ["--backend", "onnx", "info"]).output
    assert "backend      onnx" in out


@needs("onnx")
def test_a_checked_load_is_not_checked_again(export_dir, tmp_path, monkeypatch):
    """The second load of a checkpoint already checked (same backend, same package versions: its load stamp)
    attaches the same graphs without fingerprinting, exporting or comparing anything again."""
    monkeypatch.setenv("GEOVEC_CACHE", str(tmp_path / "cache"))
    first = geovec.load_model(backend="onnx", export_dir=export_dir)

    def again(*args, **kwargs):
        raise AssertionError("a stamped load looked again")

    for module, name in ((ex, "fingerprint"), (ex, "ensure_graphs"), (backends, "checked_faithfulness")):
        monkeypatch.setattr(module, name, again)
    second = geovec.load_model(backend="onnx", export_dir=export_dir)
    assert second.backend == first.backend == "onnx" and second.runner.paths == first.runner.paths
    items = ["a harbour", {"lat": 52.1, "lon": 5.2}]
    np.testing.assert_allclose(second.encode(items), first.encode(items), atol=1e-6)


@needs("onnx")
def test_changed_weights_fall_back_to_torch_and_training_runs_torch(torch_model, export_dir):
    m = geovec.load_model(backend="torch")
    backends.attach(m, runner_for(m, export_dir, "onnx"))
    items = ["a harbour", {"lat": 10.0, "lon": 20.0}]
    before = m.encode(items)
    with torch.no_grad():
        m.head.weight.mul_(-1.0)  # what an optimizer step does: in place
    flipped = m.encode(items)
    assert m.stages["head"].stale and not m.stages["encoder"].stale
    assert not np.allclose(flipped, before, atol=1e-3)
    backends.attach(m, None)
    np.testing.assert_allclose(flipped, m.encode(items), atol=1e-5)  # the torch head with the new weights
    backends.attach(m, backends.OnnxRuntimeRunner(ex.find_graphs(m, [export_dir])))  # the head no longer matches
    assert m.runner.graphs == set(ex.model_graphs(m)) - {"head"}
    m.train()
    emb = m.embed_prepared([m.prepare(geovec.Item(text="a port", order=("text",)))])
    emb.sum().backward()  # gradients: the torch modules ran
    assert m.head.weight.grad is not None


@needs("onnx")
def test_a_runner_fills_the_stage_slots_once_and_detaching_gives_torch_back(export_dir):
    """Attaching puts one graph-backed step in each slot the runner has a graph for; the forward pass then runs
    them without asking (no per-call choice of backend), and detaching gives every slot its torch step back."""
    from geovec.models.stages import Stage

    m = geovec.load_model(backend="torch")
    assert m.backend == "torch" and all(isinstance(s, Stage) for s in m.stages.values())
    runner = runner_for(m, export_dir, "onnx")
    backends.attach(m, runner)
    assert m.backend == "onnx" and m.runner is runner
    graph_backed = {g for g, s in m.stages.items() if isinstance(s, backends.GraphStage)}
    assert graph_backed == set(ex.model_graphs(m)) | {"encoder_text"}  # text-only batches: the encoder's graph
    assert m.stages["encoder_text"] is m.stages["encoder"]
    calls = []
    run = runner.run
    runner.run = lambda g, *a: (calls.append(g), run(g, *a))[1]
    items = ["a harbour", {"image": backends.synthetic_scene(5, 224, 224), "box": [10, 10, 90, 90]},
             {"lat": 52.1, "lon": 5.2}]
    with_graphs = m.encode(items)
    assert {"vision", "location", "encoder", "head", "global_text"} <= set(calls)
    calls.clear()
    backends.attach(m, None)
    assert m.backend == "torch" and m.runner is None and all(isinstance(s, Stage) for s in m.stages.values())
    np.testing.assert_allclose(m.encode(items), with_graphs, atol=1e-4)
    assert calls == []


@needs("onnx")
def test_gradients_and_training_mode_run_the_torch_steps(export_dir):
    """A graph-backed slot runs torch whenever gradients are on or its modules are in training mode (the graphs
    hold no gradients and no training-mode behaviour), without being marked stale."""
    import copy

    m = geovec.load_model(backend="torch")
    runner = runner_for(m, export_dir, "onnx")
    backends.attach(m, runner)
    calls = []
    run = runner.run
    runner.run = lambda g, *a: (calls.append(g), run(g, *a))[1]
    pooled = torch.randn(2, m.backbone.hidden_size)
    with torch.no_grad():
        expected = m.head(pooled)
        np.testing.assert_allclose(m.stages["head"](pooled).numpy(), expected.numpy(), atol=1e-5)
    assert calls == ["head"]
    calls.clear()
    with torch.enable_grad():
        out = m.stages["head"](pooled.requires_grad_())
    assert calls == [] and out.grad_fn is not None  # torch ran, with its autograd graph
    m.head.train()
    with torch.no_grad():
        m.stages["head"](pooled)
    assert calls == [] and not m.stages["head"].stale
    m.head.eval()
    clone = copy.deepcopy(m)  # a copy (or pickle) drops the runner's sessions: it runs torch
    assert clone.backend == "torch" and m.backend == "onnx"
    assert clone.global_path.towers.location_features.__self__ is clone.encoder  # the copy reads its own towers
    with torch.no_grad():
        np.testing.assert_allclose(clone.stages["head"](pooled).numpy(), expected.numpy(), atol=1e-5)
    assert calls == []


def test_without_a_runtime_torch_and_a_one_line_hint(torch_model, monkeypatch, capsys):
    m = torch_model
    monkeypatch.setattr(backends, "installed", lambda b: b == "torch")
    monkeypatch.setattr(backends, "_hinted", False)
    assert backends.apply_backend(m, "auto") == "torch" and m.backend == "torch"
    backends.apply_backend(m, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "geovec[onnx]" in err[0], err  # once per process
    with pytest.raises(ImportError, match="geovec\\[onnx\\]"):
        backends.apply_backend(m, "onnx")


def test_architectures_without_graphs_stay_on_torch():
    class Other:  # e.g. qwen2-vl: no stages
        class config:
            architecture = "qwen2-vl"

    assert backends.apply_backend(Other(), "auto") == "torch"
    with pytest.raises(ValueError, match="runs on torch only"):
        backends.apply_backend(Other(), "onnx")
    with pytest.raises(ValueError, match="unknown backend"):
        backends.apply_backend(Other(), "tensorrt")


def test_batches_group_by_image_size_and_files_decode_once(torch_model, tmp_path, monkeypatch):
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    Image.fromarray(scene(1, 64)).save(small)  # resized up to 224
    Image.fromarray(scene(2, 480)).save(big)  # resized down to 448
    import geovec.models.single_encoder as se

    decoded, shapes = [], []
    real_read, real_embed = se.read_image, torch_model.embed_prepared
    monkeypatch.setattr(se, "read_image", lambda src: decoded.append(str(src)) or real_read(src))
    monkeypatch.setattr(torch_model, "embed_prepared",
                        lambda prep: shapes.append({tuple(p.pixels.shape) for p in prep}) or real_embed(prep))
    torch_model.encoder._decoded.clear()
    items = [small, {"image": big, "box": [0, 0, 100, 100]}, {"image": small, "box": [8, 8, 40, 40]},
             {"image": big, "text": "a port"}]
    E = torch_model.encode(items, batch_size=2)
    monkeypatch.undo()
    assert sorted(decoded) == sorted({str(small), str(big)}), "each file decoded once"
    assert all(len(s) == 1 for s in shapes), f"a batch holds one image size: {shapes}"
    alone = np.concatenate([torch_model.encode([it]) for it in items])
    np.testing.assert_allclose(E, alone, atol=1e-5)


def _bench_module(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"geovec_{name}_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs("onnx")
def test_throughput_benchmark_replays_the_graph_calls_of_an_encode(torch_model, export_dir):
    """benchmarks/throughput.py's graphs-alone bound: the graphs one encode called, timed on the runner alone."""
    bench = _bench_module("throughput")
    assert bench.graph_ceiling(torch_model, ["a harbour"], 8) is None  # torch: no graphs to replay
    images = [scene(i, 224) for i in range(3)]
    runner = runner_for(torch_model, export_dir, "onnx")
    backends.attach(torch_model, runner)
    try:
        img = bench.graph_ceiling(torch_model, images, 8, repeats=2)
        txt = bench.graph_ceiling(torch_model, ["a harbour", "two runways"], 8, repeats=2)
        assert "run" not in runner.__dict__  # the recording wrapper is gone again
    finally:
        backends.attach(torch_model, None)
    assert {"vision", "encoder", "head"} <= set(img["ms_per_item"]) and img["items_per_s"] > 0
    assert "vision" not in txt["ms_per_item"] and "global_text" in txt["ms_per_item"]
    assert all(v > 0 for v in img["ms_per_item"].values())


def test_throughput_stage_timer_times_both_halves_through_the_slots(torch_model):
    """benchmarks/throughput.py's stage shares: the timer wraps the model's stage slots, so the dual-path model's
    global path (its crop through the tower, its sentence pass) is timed as the encoder half is; the slots are
    the model's own again afterwards."""
    bench = _bench_module("throughput")
    before = dict(torch_model.stages)
    seen: list[str] = []
    for name in ("vision", "global_text"):  # count the calls that reach the slots, under the timer's wrappers
        torch_model.stages[name] = lambda *a, _f=before[name], _n=name: seen.append(_n) or _f(*a)
    counting = dict(torch_model.stages)
    try:
        with bench.StageTimer(torch_model) as st:
            torch_model.encode([{"image": scene(0, 224), "box": [16, 16, 120, 150], "text": "a port"}])
            assert torch_model.stages["vision"] is not counting["vision"]  # timed while the block runs
        assert seen.count("vision") == 2 and seen.count("global_text") == 1  # the image, then the global crop
        assert st.seconds["tower"] > 0 and st.seconds["encoder"] > 0 and st.seconds["forward"] > st.seconds["tower"]
        assert "embed_prepared" not in torch_model.__dict__
        assert all(torch_model.stages[n] is counting[n] for n in counting)
    finally:
        torch_model.stages.update(before)


def test_compute_bound_counts_the_flops_of_an_encode(torch_model):
    """benchmarks/compute_bound.py: FLOPs per item from the real shapes, larger for the items that do more."""
    cb = _bench_module("compute_bound")
    images = [scene(i, 224) for i in range(2)]
    short = cb.encode_flops(torch_model, ["a port", "a church"], 8)
    long = cb.encode_flops(torch_model, ["many buildings and green trees are around a large port with cars"] * 2, 8)
    img = cb.encode_flops(torch_model, images, 8)
    boxed = cb.encode_flops(torch_model, [{"image": im, "box": [16, 16, 120, 150]} for im in images], 8)
    assert 0 < short["gflop_per_item"] < long["gflop_per_item"]  # more tokens, more arithmetic
    assert "EfficientNetLite" not in short["gflop_per_item_by_module"]  # a text never runs the vision tower
    # a box item runs the tower a second time: on the image for the encoder, on the box's crop for the global path
    tower = img["gflop_per_item_by_module"]["EfficientNetLite"]
    assert 1.5 * tower < boxed["gflop_per_item_by_module"]["EfficientNetLite"] < 2.01 * tower
    for f in (short, img, boxed):  # the split accounts for every counted FLOP
        assert f["gflop_per_item"] == pytest.approx(sum(f["gflop_per_item_by_module"].values()), rel=0.01)


def test_compute_bound_arithmetic_and_gemm_rates():
    cb = _bench_module("compute_bound")
    flops = {"text": {"gflop_per_item": 0.5}, "image": {"gflop_per_item": 1.0}}
    table = cb.bounds(flops, 200.0, {"text": 1000.0}, {"text": 250.0, "image": None})
    assert table["text"] == {"gflop_per_item": 0.5, "bound_items_per_s": 400.0, "goal_items_per_s": 1000.0,
                             "needed_gflop_per_s": 500.0, "needed_share_of_best_gemm": 2.5,
                             "graphs_alone_items_per_s": 250.0, "graphs_alone_gflop_per_s": 125.0,
                             "graphs_alone_share_of_best_gemm": 0.62}
    assert table["image"] == {"gflop_per_item": 1.0, "bound_items_per_s": 200.0}
    rates = cb.gemm_rates([(64, 32, 48)], threads=1, repeats=2)
    engines = {"torch-fp32", "torch-bf16"} | ({"onnxruntime-fp32"} if backends.installed("onnx") else set())
    assert set(rates) == engines and all(r["64x32x48"] > 0 for r in rates.values())


def test_compute_bound_refuses_a_model_with_a_runtime_attached(torch_model, export_dir):
    cb = _bench_module("compute_bound")
    backends.attach(torch_model, runner_for(torch_model, export_dir, "onnx" if backends.installed("onnx") else "openvino"))
    try:
        with pytest.raises(ValueError, match="backend='torch'"):
            cb.encode_flops(torch_model, ["a port"], 8)
    finally:
        backends.attach(torch_model, None)


def test_compute_bound_reads_the_cpu_id():
    cb = _bench_module("compute_bound")
    info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n" \
           "flags\t\t: avx2 avx512f\n\nprocessor\t: 1\nvendor_id\t: Other\n"
    assert cb.cpu_id(info) == {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "model name": "AMD EPYC"}
