"""Dev evaluation during training is the rsmeb-dev benchmark run through ``geovec.bench``'s runner."""

import json

import pytest
import torch

from geovec.bench.encoders import BenchEncoder
from geovec.bench.runner import RunConfig, run_benchmark
from geovec.bench.tasks import tasks_in
from geovec.train.config import TrainConfig
from geovec.train.data import Example, write_jsonl
from geovec.train.dev_eval import DevEvaluator, main_scores, select_tasks

from .fixtures import write_dev_data
from .tiny import TinyTextModel

pytest.importorskip("rasterio")  # the fixture's GeoTIFFs


class TinyInterleavedModel(TinyTextModel):
    """TinyTextModel that also reads an image's file name and a location, so every dev task has something to
    rank by; counts its forward passes."""

    def __init__(self):
        super().__init__()
        self.forward_calls = 0

    def prepare(self, item):
        from pathlib import Path

        parts = [item.text or ""]
        if isinstance(item.image, (str, Path)):
            parts.append(Path(item.image).stem.replace("_", " "))
        if item.lat is not None:
            parts.append(f"{item.lat:.2f} {item.lon:.2f}")
        if item.boxes:
            parts.append(" ".join(str(int(v) // 50) for b in item.boxes for v in b))
        text = " ".join(p for p in parts if p)
        ids = [hash_id(text[i : i + 3], self.buckets) for i in range(max(1, len(text) - 2))]
        return torch.tensor(ids)

    def embed_prepared(self, prepared):
        self.forward_calls += 1
        return super().embed_prepared(prepared)


def hash_id(s, buckets):
    import hashlib

    return int(hashlib.md5(s.encode()).hexdigest(), 16) % buckets


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_dev_data(tmp_path_factory.mktemp("data"), outside=True)


@pytest.fixture(scope="module")
def task_cache(tmp_path_factory):
    """Where the dev tasks render their mosaics (keyed by the mosaics' fingerprint): shared by the tests."""
    return tmp_path_factory.mktemp("task-cache")


DEV = [s.name for s in tasks_in("rsmeb-dev")]


def dev_task(meta_task: str) -> str:
    """The first rsmeb-dev task of a meta-task (the registry's names, whatever they are now)."""
    return next(s.name for s in tasks_in("rsmeb-dev") if s.meta_task == meta_task)


def _bench_scores(model, data_root, tmp_path, specs, task_cache, **options):
    """What `geovec bench` reports for this model (its own encode, no embedding cache)."""
    cfg = RunConfig(data_root, tmp_path / "bench", task_cache, progress=False, use_cache=False, **options)
    recs = run_benchmark(specs, BenchEncoder(model), cfg, log=lambda *_: None)
    return main_scores(recs), recs


def test_select_tasks_by_name_and_suite():
    assert [s.name for s in select_tasks(None)] == DEV
    names = [s.name for s in select_tasks([DEV[-1], "rsmeb-dev"])]
    assert names[0] == DEV[-1] and sorted(names) == sorted(DEV)
    assert [s.name for s in select_tasks(f"{DEV[1]}, {DEV[0]}")] == [DEV[1], DEV[0]]
    with pytest.raises(ValueError, match="unknown task"):
        select_tasks(["dev-nope"])


def test_dev_scores_are_the_benchmarks(data_root, tmp_path, task_cache):
    model = TinyInterleavedModel()
    ev = DevEvaluator(data_root, tmp_path / "dev", cache_dir=task_cache)
    scores = ev(model, step=7)
    assert ev.last_revision == "untrained-step7"
    ran = [r["task_name"] for r in ev.records if r["status"] == "ok"]
    assert ran == DEV, [r.get("reason") for r in ev.records]
    folder = tmp_path / "dev" / "results" / "tiny" / "untrained-step7"
    for name in ran:
        rec = json.loads((folder / f"{name}.json").read_text())
        assert rec["model_revision"] == "untrained-step7" and scores[name] == rec["scores"][next(iter(rec["scores"]))][0]["main_score"]
        s = rec["scores"][next(iter(rec["scores"]))][0]
        if "ci95" in s:  # the runner's 95% interval goes to the training log too
            assert scores[f"{name}/ci_low"] <= scores[name] <= scores[f"{name}/ci_high"]
    bench, _ = _bench_scores(TinyInterleavedModel(), data_root, tmp_path, tasks_in("rsmeb-dev"), task_cache)
    assert {k: v for k, v in scores.items() if "/" not in k} == pytest.approx({k: v for k, v in bench.items() if "/" not in k}, abs=1e-6)
    assert 0 < max(v for k, v in scores.items() if "/" not in k)  # the fixture model is not at zero everywhere


def test_every_evaluation_embeds_the_current_weights(data_root, tmp_path, task_cache):
    model = TinyInterleavedModel()
    tasks = [dev_task("retrieval"), dev_task("region")]
    ev = DevEvaluator(data_root, tmp_path / "dev", tasks=tasks, cache_dir=task_cache)
    first = ev(model, step=1)
    with torch.no_grad():  # "training": new weights
        for p in model.head.parameters():
            p.add_(torch.randn_like(p))
    calls = model.forward_calls
    second = ev(model, step=2)
    assert model.forward_calls > calls  # nothing reused from the first evaluation
    assert set(first) == set(second)
    assert (tmp_path / "dev" / "results" / "tiny" / "untrained-step1").is_dir()
    assert (tmp_path / "dev" / "results" / "tiny" / "untrained-step2").is_dir()
    again = ev(model, step=1)  # the same step again (a restarted run): recomputed, not read back
    assert again == second
    rec = json.loads((tmp_path / "dev" / "results" / "tiny" / "untrained-step1" / f"{tasks[0]}.json").read_text())
    assert rec["scores"][next(iter(rec["scores"]))][0]["main_score"] == second[tasks[0]]
    bench, _ = _bench_scores(model, data_root, tmp_path, select_tasks(tasks), task_cache)
    assert second == pytest.approx(bench, abs=1e-6)


def test_max_queries_subsamples_when_the_runner_can(data_root, tmp_path, task_cache):
    import dataclasses

    ev = DevEvaluator(data_root, tmp_path / "dev", tasks=[dev_task("retrieval")], max_queries=3, cache_dir=task_cache)
    if "max_queries" not in {f.name for f in dataclasses.fields(RunConfig)}:
        pytest.skip("runner without max_queries")
    ev(TinyInterleavedModel(), step=0)
    assert ev.records[0]["n_queries"] <= 2 * 3  # at most max_queries per ranking (a task may have two)


def test_trainer_logs_the_dev_scores_of_each_step(data_root, tmp_path):
    from geovec.train.run import dev_evaluator
    from geovec.train.trainer import Trainer

    tasks = [dev_task("retrieval"), dev_task("classification")]
    words = ["airport", "beach", "forest", "harbour", "meadow", "river"]
    data = tmp_path / "d.jsonl"
    write_jsonl([Example("retrieval", {"text": f"an image of a {w}"}, [{"text": f"{w} seen from above"}]) for w in words],
                data)
    cfg = TrainConfig.from_dict({"data": [{"path": str(data)}], "output_dir": str(tmp_path / "run"), "batch_size": 4,
                                 "max_steps": 4, "warmup_steps": 1, "save_every": 0, "log_every": 1, "eval_every": 2,
                                 "eval_data_root": str(data_root), "eval_tasks": tasks,
                                 "revision": "t1"})
    trainer = Trainer(cfg, model=TinyInterleavedModel())
    trainer.evaluate = dev_evaluator(cfg, trainer)
    last = trainer.run(show_progress_bar=False)
    evals = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    for r in evals:
        assert set(tasks) <= set(r) and not set(DEV) - set(tasks) & set(r)
        folder = tmp_path / "run" / "dev" / "results" / "tiny" / f"t1-step{r['step']}"
        assert (folder / f"{tasks[1]}.json").exists()
    assert last[tasks[0]] == evals[-1][tasks[0]]


def test_a_plain_evaluate_callable_still_works(tmp_path):
    from geovec.train.trainer import Trainer

    data = tmp_path / "d.jsonl"
    write_jsonl([Example("retrieval", {"text": f"q {i}"}, [{"text": f"d {i}"}]) for i in range(4)], data)
    cfg = TrainConfig.from_dict({"data": [{"path": str(data)}], "output_dir": str(tmp_path / "run"), "batch_size": 4,
                                 "max_steps": 2, "save_every": 0, "log_every": 1, "warmup_steps": 1})
    seen = []
    Trainer(cfg, model=TinyTextModel(), evaluate=lambda m: seen.append(m) or {"x": 1.0}).run(show_progress_bar=False)
    assert len(seen) == 1


@pytest.mark.slow
def test_feature_and_text_caches_give_the_benchmarks_numbers(data_root, tmp_path, task_cache):
    """The real compact model: dev evaluation through the training feature cache (filled with the dev images)
    and the text-state cache scores what `geovec bench` scores with the model's own encode."""
    import geovec
    from geovec.train.feature_cache import FeatureCache
    from geovec.train.trainer import TextStateCache

    m = geovec.load_model("geovec-compact-untrained")
    m.apply_trainable([])
    specs = [dev_task("retrieval"), dev_task("region"), dev_task("geo")]
    cache = FeatureCache(tmp_path / "features", m)
    tc = TextStateCache(m)
    # 8 queries per ranking keep the real model's passes short (the subset is seeded: the same for both runs)
    ev = DevEvaluator(data_root, tmp_path / "dev", cache, tasks=specs, embed_fn=tc.embed, cache_dir=task_cache,
                      max_queries=8)
    scores = ev(m, step=0)
    assert any(cache.root.rglob("*.npy")) and tc.states  # both caches were used
    bench, _ = _bench_scores(m, data_root, tmp_path, select_tasks(specs), task_cache, max_queries=8)
    assert {k: v for k, v in scores.items() if "/" not in k} == pytest.approx(
        {k: v for k, v in bench.items() if "/" not in k}, abs=1e-6)
    again = ev(m, step=1)  # features now come from the cache: same scores
    assert again == scores
