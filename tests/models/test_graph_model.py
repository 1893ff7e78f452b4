"""The exported-graph runtime: a checked load's whole-item graphs, and a later ``load_model()`` without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from geovec.runtime.backends import synthetic_scene  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A geovec cache of its own, filled by one checked load of the default model (which exports its graphs)."""
    path = tmp_path_factory.mktemp("geovec-cache")
    old = os.environ.get("GEOVEC_CACHE")
    os.environ["GEOVEC_CACHE"] = str(path)
    try:
        import geovec

        first = geovec.load_model(backend="onnx")
        assert type(first).__name__ == "DualPathModel"  # the first load is the torch model, and checks the graphs
        yield path, first
    finally:
        if old is None:
            os.environ.pop("GEOVEC_CACHE", None)
        else:
            os.environ["GEOVEC_CACHE"] = old


@pytest.fixture(scope="module")
def graph_model(cache):
    import geovec

    m = geovec.load_model(backend="onnx")
    assert type(m).__name__ == "GraphModel"
    return m


@pytest.fixture(scope="module")
def reference(cache):
    """The torch model's embeddings (no backend attached)."""
    import geovec

    return geovec.load_model(backend="torch", lazy=False)


ITEMS = [
    "storage tanks next to a harbour",
    "a dense residential area with many houses, roads and a school",
    {"text": "a bridge over a river", "instruction": "Find the matching image."},
    synthetic_scene(1, 224, 224),
    synthetic_scene(2, 256, 256),  # the global path's own 224 px view
    synthetic_scene(3, 500, 300),  # resized, not square
    {"image": synthetic_scene(4, 160, 160), "instruction": "Represent this remote sensing image."},
]


def test_the_manifest_records_the_check_against_torch(cache):
    path, _ = cache
    manifests = list((path / "onnx" / "items").glob("*/manifest.json"))
    assert len(manifests) == 1
    check = json.loads(manifests[0].read_text())["check"]
    assert check["min_cosine"] >= 0.9999 and check["n_items"] >= 10


def test_graph_model_embeds_texts_and_images_as_torch_does(graph_model, reference):
    got = graph_model.encode(ITEMS, batch_size=4)
    ref = reference.encode(ITEMS, batch_size=4)
    assert got.shape == ref.shape == (len(ITEMS), 768)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    assert graph_model._torch is None  # nothing needed torch
    # task instructions and the document side resolve as on the torch model
    q = graph_model.encode_query(["a harbour"], task="retrieval")
    np.testing.assert_allclose(q, reference.encode_query(["a harbour"], task="retrieval"), atol=2e-5)
    d = graph_model.encode_document([synthetic_scene(5, 224, 224)])
    np.testing.assert_allclose(d, reference.encode_document([synthetic_scene(5, 224, 224)]), atol=2e-5)
    assert graph_model._torch is None


def test_bad_input_is_reported_by_item(graph_model, tmp_path):
    missing = tmp_path / "nope.png"
    out, errors = graph_model.encode_partial(["a harbour", {"image": str(missing)}, {"image": "x", "text": ""}])
    assert set(errors) == {1, 2} and "nope.png" in errors[1]
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


def test_other_items_and_attributes_load_the_torch_model(cache, reference):
    import geovec

    m = geovec.load_model(backend="onnx")
    assert type(m).__name__ == "GraphModel" and m._torch is None
    box = [{"image": synthetic_scene(6, 224, 224), "box": [10, 10, 120, 100]}, {"lat": 52.1, "lon": 5.2}]
    # these run on the onnx stage graphs, held to the backends' cosine (the place's Fourier features differ most)
    got, ref = m.encode(box), reference.encode(box)
    assert (np.sum(got * ref, axis=1) >= 0.9999).all()
    assert m._torch is not None and m.backend == "onnx"
    assert m.encoder is m.torch_model.encoder  # the torch model's parts, as on a plain load
    np.testing.assert_allclose(m.encode(ITEMS[:2]), reference.encode(ITEMS[:2]), atol=2e-5)


def test_lazy_off_and_a_missing_graph_give_the_torch_model(cache, monkeypatch):
    import geovec

    path, _ = cache
    monkeypatch.setenv("GEOVEC_LAZY", "0")
    assert type(geovec.load_model(backend="onnx")).__name__ == "DualPathModel"
    monkeypatch.delenv("GEOVEC_LAZY")
    manifest = next((path / "onnx" / "items").glob("*/manifest.json"))
    text = manifest.parent / "text.onnx"
    moved = text.with_suffix(".moved")
    text.rename(moved)
    try:
        assert type(geovec.load_model(backend="onnx")).__name__ == "DualPathModel"  # and the graphs are made again
        assert text.is_file()
        assert type(geovec.load_model(backend="onnx")).__name__ == "GraphModel"
    finally:
        moved.unlink(missing_ok=True)


def test_a_lazy_load_imports_neither_torch_nor_transformers(cache):
    path, _ = cache
    code = ("import sys, geovec; m = geovec.load_model(backend='onnx'); m.encode(['a harbour']);"
            "print(type(m).__name__, 'torch' in sys.modules, 'transformers' in sys.modules)")
    env = {**os.environ, "GEOVEC_CACHE": str(path), "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["GraphModel", "False", "False"]


def test_graph_model_behind_the_other_doors(cache, reference):
    """What callers do with a loaded model besides ``encode``: the sentence-transformers adapter (its own prepare and
    forward), the benchmark's forward timing, and replacing a method on the model object."""
    pytest.importorskip("sentence_transformers", reason="the st extra is not installed")
    import geovec
    from geovec.integrations.sentence_transformers import to_sentence_transformer

    m = geovec.load_model(backend="onnx")
    items = ["a harbour", synthetic_scene(7, 224, 224)]
    before = m.stage_seconds["forward"]
    m.encode(items)
    assert m.stage_seconds["forward"] > before
    got = to_sentence_transformer(m).encode(items, normalize_embeddings=True)
    ref = reference.encode(items)
    assert (np.sum(np.asarray(got) * ref, axis=1) >= 0.9999).all()
    calls = []
    m.encode_partial = lambda items, **kw: calls.append(len(items))
    m.encode_partial(["x"])
    assert calls == [1] and "encode_partial" not in vars(m.torch_model)


def test_the_cache_keeps_the_most_recently_used_item_graphs(tmp_path):
    import time

    from geovec.models.item_graphs import prune

    for i, name in enumerate(["a", "b", "c", "d", "e"]):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
        t = time.time() - 100 + i
        os.utime(tmp_path / name / "manifest.json", (t, t))
    (tmp_path / "f.tmp").mkdir()  # another process's export in progress
    os.utime(tmp_path / "a" / "manifest.json")  # just used
    removed = prune(tmp_path, keep=3)
    assert sorted(p.name for p in removed) == ["b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d", "e", "f.tmp"]


def test_a_query_whose_task_weights_its_global_half_goes_to_torch(cache, reference):
    """The default weights a VQA question's global half 0 (``query_weights``); the item graphs bake in weight 1, so
    such an item, even text-only, is embedded by the torch model, and equals it."""
    import geovec

    m = geovec.load_model(backend="onnx")
    assert type(m).__name__ == "GraphModel"
    assert m.config.extra["global_path"]["query_weights"] == {"vqa": 0.0}
    question = ["How many ships are in the harbour?"]
    got = m.encode(question, task="vqa")
    assert m._torch is not None  # the question loaded the torch model
    np.testing.assert_allclose(got, reference.encode(question, task="vqa"), atol=2e-5)
    assert np.abs(got[:, :384]).max() == 0.0  # no global half
    fresh = geovec.load_model(backend="onnx")
    fresh.encode(question, task="retrieval")
    assert fresh._torch is None  # the same text as a retrieval query stays on the graphs
