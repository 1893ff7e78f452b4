"""Dev evaluation during training = the ``rsmeb-dev`` tasks of ``geovec bench``, through the benchmark's runner.

Task builders (:mod:`geovec.bench.dev`: RSICD ``val``, its mosaics, the held-out GeoTIFFs), metrics and result
records are :func:`geovec.bench.runner.run_benchmark`'s, so a dev score logged during training is the number
``geovec bench --suite rsmeb-dev`` reports for those weights. This module only adapts the model being trained:

* every evaluation is its own revision (``<revision>-step<N>``) and runs with the embedding cache off and
  ``overwrite``, so no score ever comes from embeddings of older weights or an earlier run;
* frozen vision features come from the training feature cache (filled with the dev images on first use) and
  text-only states from the trainer's text cache, so a later evaluation costs only the encoder passes; without
  a feature cache, the runner's :class:`~geovec.bench.encoders.BenchEncoder` memoises vision features per
  image within the evaluation;
* ``tasks`` picks tasks (or suites) by name, default the whole ``rsmeb-dev`` suite; ``max_queries``
  subsamples each task's queries (seeded) where the runner supports it.

An evaluation returns ``{task: main_score, task + "/ci_low": ..., task + "/ci_high": ...}`` (fractions, as in
the bench records; the interval where the runner reports one) for the training log; the full records go to
``work_dir/results/<model>/<revision>/<task>.json`` with the bench's markdown summary next to them.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from geovec.bench.encoders import BenchEncoder
from geovec.bench.runner import RunConfig, run_benchmark
from geovec.bench.tasks import SUITES, TaskSpec, get_task, tasks_in
from geovec.inputs import parse_item
from geovec.train.prepare import embed_items

DEV_SUITE = "rsmeb-dev"
# the wrapped model's instructions, its vision-feature extension points (BenchEncoder memoises features per image
# for models that have them) and what the runner reads for model_meta.json
_PASS_THROUGH = ("query_instruction", "document_instruction", "supports_image_features", "image_features",
                 "using_image_features", "config", "parameter_counts", "embed_dim")


def select_tasks(names: Sequence[str] | str | None = None) -> list[TaskSpec]:
    """Task specs by task or suite name (``"dev-RSICD-i2t"``, ``"rsmeb-dev"``), in the given order without
    repeats; None or empty = the ``rsmeb-dev`` suite. A comma-separated string is split."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        return tasks_in(DEV_SUITE)
    out: dict[str, TaskSpec] = {}
    for n in names:
        for spec in (tasks_in(n) if n in SUITES else [get_task(n)]):
            out.setdefault(spec.name, spec)
    return list(out.values())


def main_scores(records: Sequence[dict]) -> dict[str, float]:
    """``{task: main_score}`` plus ``task/ci_low`` and ``task/ci_high`` from the score's ``ci95`` (when the
    runner reports it) for every record with status ok."""
    out: dict[str, float] = {}
    for rec in records:
        if rec.get("status") != "ok":
            continue
        s = next(iter(rec["scores"].values()))[0]
        name = rec["task_name"]
        out[name] = float(s["main_score"])
        ci = s.get("ci95")
        if ci is not None and len(ci) == 2:
            out[f"{name}/ci_low"], out[f"{name}/ci_high"] = float(ci[0]), float(ci[1])
    return out


class TrainingModelEncoder:
    """The benchmark's encode contract for a model whose weights change during training.

    ``encode`` runs the model in eval mode without gradients on already-instructed items, taking vision features
    of image files from ``feature_cache`` (:class:`~geovec.train.feature_cache.FeatureCache`; missing ones are
    computed once and stored when ``fill_feature_cache``) and embedding through ``embed_fn`` (the trainer's
    text cache) when given. ``revision`` names this evaluation (results folder, embedding-cache namespace).
    """

    def __init__(self, model, revision: str, feature_cache=None, embed_fn: Callable | None = None,
                 model_id: str | None = None, fill_feature_cache: bool = True):
        self.model = model
        self.revision = str(revision)
        self.model_id = str(model_id or getattr(model, "model_id", type(model).__name__))
        self.feature_cache = feature_cache
        self.embed_fn = embed_fn
        self.fill_feature_cache = fill_feature_cache

    def __getattr__(self, name: str):
        model = self.__dict__.get("model")
        if name in _PASS_THROUGH and model is not None:
            return getattr(model, name)
        raise AttributeError(name)

    def encode(self, items, batch_size: int = 32, show_progress_bar: bool | None = None, **_) -> np.ndarray:
        parsed = [parse_item(raw, i) for i, raw in enumerate(items)]
        cache = self.feature_cache
        if cache is not None and self.fill_feature_cache:
            missing = {str(it.image) for it in parsed
                       if isinstance(it.image, (str, os.PathLike)) and not cache.has(it.image)}
            if missing:
                cache.fill(sorted(missing), show_progress_bar=False)
        emb = embed_items(self.model, parsed, cache, batch_size=batch_size, embed_fn=self.embed_fn)
        return emb.float().cpu().numpy()


def _runner_supports(option: str) -> bool:
    return option in {f.name for f in dataclasses.fields(RunConfig)}


class DevEvaluator:
    """Callable ``(model, step=None) -> {task: main score, task/ci_low, task/ci_high}`` for the training loop.

    ``data_root``: the ``shared/data`` layout the dev tasks read. ``work_dir``: results (``results/``) and the
    rendered dev mosaics (``bench-cache/``, or ``cache_dir``). ``cache``: the training feature cache (None: no
    cache). ``embed_fn``: replaces ``model.embed_prepared`` (the trainer's text cache). ``revision``: base of
    the per-evaluation revision (default: the model's). ``log``: a callable for the runner's per-task lines.
    """

    def __init__(self, data_root: str | Path, work_dir: str | Path, cache=None, tasks: Sequence[str] | str | None = None,
                 max_queries: int = 0, seed: int = 0, batch_size: int = 32, embed_fn: Callable | None = None,
                 revision: str | None = None, cache_dir: str | Path | None = None, log: Callable | None = None,
                 fill_feature_cache: bool = True):
        self.specs = select_tasks(tasks)
        self.data_root = Path(data_root)
        self.work_dir = Path(work_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else self.work_dir / "bench-cache"
        self.cache = cache
        self.embed_fn = embed_fn
        self.max_queries = int(max_queries or 0)
        self.seed = seed
        self.batch_size = batch_size
        self.revision = revision
        self.log = log or (lambda *_: None)
        self.fill_feature_cache = fill_feature_cache
        self.records: list[dict[str, Any]] = []  # the last evaluation's full records
        self.last_revision: str | None = None
        if self.max_queries and not _runner_supports("max_queries"):
            warnings.warn("this geovec.bench runner has no RunConfig.max_queries: dev tasks run on all queries",
                          stacklevel=2)

    @property
    def task_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def run_config(self) -> RunConfig:
        kw: dict[str, Any] = dict(data_root=self.data_root, out_dir=self.work_dir / "results",
                                  cache_dir=self.cache_dir, seed=self.seed, overwrite=True, progress=False,
                                  use_cache=False)
        if self.max_queries and _runner_supports("max_queries"):
            kw["max_queries"] = self.max_queries
        return RunConfig(**kw)

    def encoder(self, model, step: int | None = None) -> BenchEncoder:
        base = self.revision or str(getattr(model, "revision", "") or "dev")
        revision = f"{base}-step{step}" if step is not None else base
        wrapped = TrainingModelEncoder(model, revision, self.cache, self.embed_fn,
                                       fill_feature_cache=self.fill_feature_cache)
        return BenchEncoder(wrapped, batch_size=self.batch_size)

    def __call__(self, model, step: int | None = None) -> dict[str, float]:
        enc = self.encoder(model, step)
        self.last_revision = enc.revision
        self.records = run_benchmark(self.specs, enc, self.run_config(), log=self.log)
        return main_scores(self.records)
