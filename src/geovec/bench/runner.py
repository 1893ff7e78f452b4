"""Run tasks for one model: build -> embed (cached) -> rank -> score -> one JSON per task.

Results go to ``<out>/<model_id>/<revision>/<task>.json`` (MTEB-like). A task whose result file exists is
skipped (an interrupted run resumes; ``overwrite=True`` recomputes). A task whose data is missing is
written with ``"status": "not run"`` and the reason, never a score, and is retried on the next run.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geovec.bench.cache import DEFAULT_CACHE_DIR, EmbeddingCache
from geovec.data import DatasetNotFoundError
from geovec.bench.encoders import BenchEncoder
from geovec.bench.metrics import geo_errors, hit_at_k, rank_golds, summarize
from geovec.bench.task_data import BuildContext, TaskData
from geovec.bench.tasks import TaskSpec
from geovec.inputs import parse_item


@dataclass
class RunConfig:
    data_root: Path
    out_dir: Path
    cache_dir: Path = DEFAULT_CACHE_DIR
    seed: int = 0
    overwrite: bool = False
    progress: bool = True
    use_cache: bool = True

    def __post_init__(self):
        self.data_root, self.out_dir, self.cache_dir = Path(self.data_root), Path(self.out_dir), Path(self.cache_dir)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", s).strip("_") or "model"


def result_dir(out_dir: Path, encoder: BenchEncoder) -> Path:
    return Path(out_dir) / slug(encoder.model_id) / slug(encoder.revision)


def _with_instructions(items: list[dict], encoder: BenchEncoder, side: str, kind: str, override: str | None) -> list[dict]:
    out = []
    for i, it in enumerate(items):
        instr = encoder.instruction(side, kind, parse_item(it, i), override)
        out.append({**it, "instruction": instr} if instr else dict(it))
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (Path,)):
        return str(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _base_record(spec: TaskSpec, encoder: BenchEncoder) -> dict[str, Any]:
    import geovec

    return {
        "task_name": spec.name, "suite": spec.suite, "meta_task": spec.meta_task, "dataset": spec.dataset,
        "split": spec.split, "main_score_name": spec.main_score,
        "model_name": encoder.model_id, "model_revision": encoder.revision,
        "geovec_version": geovec.__version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task_metadata": spec.metadata(),
    }


def score_task(data: TaskData, Q: np.ndarray, C: np.ndarray) -> dict[str, Any]:
    """All metrics of one task from its query and candidate embeddings."""
    ranking = rank_golds(Q, C, data.gold, data.query_groups, data.candidate_groups, data.exclude)
    scores: dict[str, Any] = summarize(ranking)
    if data.within_groups is not None:
        within = rank_golds(Q, C, data.gold, data.within_groups[0], data.within_groups[1], data.exclude)
        w = summarize(within)
        scores["within_group"] = {k: w[k] for k in ("p@1", "hit@5", "mrr", "chance_p@1")}
        scores["within_group"]["mean_group_size"] = float(np.mean(within.n_allowed))
    if data.query_labels is not None:
        by: dict[str, list[float]] = {}
        for lab, r in zip(data.query_labels, ranking.gold_ranks):
            by.setdefault(str(lab), []).append(hit_at_k(r, 1))
        scores["p@1_by_label"] = {k: float(np.mean(v)) for k, v in sorted(by.items())}
    if data.query_latlon is not None and data.candidate_latlon is not None:
        scores.update(geo_errors(ranking, data.query_latlon, data.candidate_latlon, thresholds_km=(1, 25, 200)))
    return scores


def run_task(spec: TaskSpec, encoder: BenchEncoder, cfg: RunConfig, cache: EmbeddingCache) -> dict[str, Any]:
    path = result_dir(cfg.out_dir, encoder) / f"{spec.name}.json"
    if path.exists() and not cfg.overwrite:
        record = json.loads(path.read_text())
        if record.get("status") == "ok":
            record["_skipped"] = True
            return record
    record = _base_record(spec, encoder)
    t0 = time.perf_counter()
    enc0, fwd0, key0 = encoder.encode_seconds, encoder.forward_seconds, cache.key_seconds
    hits0, miss0 = cache.hits, cache.misses
    try:
        data = spec.build(BuildContext(cfg.data_root, cfg.cache_dir, cfg.seed))
    except DatasetNotFoundError as e:
        record.update(status="not run", reason=str(e))
        _write_json(path, record)
        return record
    t_build = time.perf_counter() - t0
    q_items = _with_instructions(data.queries, encoder, "query", spec.query_kind, spec.query_instruction)
    c_items = _with_instructions(data.candidates, encoder, "document", spec.candidate_kind, spec.candidate_instruction)
    t1 = time.perf_counter()
    Q = cache.embed(encoder, q_items, desc=f"{spec.name} queries", progress=cfg.progress)
    C = cache.embed(encoder, c_items, desc=f"{spec.name} candidates", progress=cfg.progress)
    t_embed = time.perf_counter() - t1
    t2 = time.perf_counter()
    scores = score_task(data, Q, C)
    t_metrics = time.perf_counter() - t2
    total = time.perf_counter() - t0
    split_key = spec.split.split()[0]
    record.update(
        status="ok",
        scores={split_key: [{"main_score": scores[spec.main_score], "hf_subset": "default", "languages": ["eng"],
                             **scores}]},
        evaluation_time=total,
        n_queries=len(data.queries), n_candidates=len(data.candidates),
        task_info=data.info,
        timing={"build_s": t_build, "embed_s": t_embed, "encode_s": encoder.encode_seconds - enc0,
                "forward_s": encoder.forward_seconds - fwd0, "content_key_s": cache.key_seconds - key0,
                "metrics_s": t_metrics, "total_s": total,
                "cache_hits": cache.hits - hits0, "cache_misses": cache.misses - miss0},
    )
    _write_json(path, record)
    return record


def run_benchmark(specs: Sequence[TaskSpec], encoder: BenchEncoder, cfg: RunConfig,
                  log=print) -> list[dict[str, Any]]:
    """Run ``specs`` in order; writes each task's JSON and the markdown summary; returns the records."""
    from geovec.bench.report import write_summary

    cache = EmbeddingCache(cfg.cache_dir, enabled=cfg.use_cache)
    records = []
    try:
        for i, spec in enumerate(specs):
            rec = run_task(spec, encoder, cfg, cache)
            records.append(rec)
            if rec.get("status") == "ok":
                main = rec["scores"][next(iter(rec["scores"]))][0]["main_score"]
                note = " (already done, skipped)" if rec.get("_skipped") else f" in {rec['evaluation_time']:.1f} s"
                log(f"[{i + 1}/{len(specs)}] {spec.name}: {spec.main_score} = {100 * main:.2f}{note}")
            else:
                log(f"[{i + 1}/{len(specs)}] {spec.name}: not run ({rec['reason'].splitlines()[0]})")
    finally:
        cache.close()
    write_summary(result_dir(cfg.out_dir, encoder))
    return records
