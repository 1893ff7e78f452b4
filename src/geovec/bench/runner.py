"""Run tasks for one model: build -> embed (cached) -> rank -> score -> one JSON per task.

Results go to ``<out>/<model_id>/<revision>/<task>.json`` (MTEB-like). A task whose result file exists is
skipped (an interrupted run resumes; ``overwrite=True`` recomputes). A task whose data is missing is
written with ``"status": "not run"`` and the reason, never a score, and is retried on the next run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geovec.bench.cache import EmbeddingCache
from geovec.data import DatasetNotFoundError
from geovec.bench.encoders import BenchEncoder
from geovec.bench.metrics import (
    QueryScores,
    bootstrap_ci,
    geo_errors,
    hit_at_k,
    l2_normalize,
    paired_bootstrap,
    per_query_values,
    rank_golds,
    summarize,
)
from geovec.bench.task_data import BuildContext, MultiTaskData, TaskData, subsample_queries
from geovec.bench.tasks import TaskSpec
from geovec.inputs import parse_item
from geovec.paths import cache_dir as default_cache_dir


@dataclass
class RunConfig:
    data_root: Path
    out_dir: Path
    cache_dir: Path = field(default_factory=default_cache_dir)  # $GEOVEC_CACHE or ~/.cache/geovec
    seed: int = 0
    overwrite: bool = False
    progress: bool = True
    use_cache: bool = True
    max_queries: int = 0  # > 0: score a seeded random subset of each ranking's queries (quick checks, training)
    prompt_ensemble: bool = False  # classification extra: class embedding = mean over the task's prompt templates
    n_boot: int = 1000  # bootstrap resamples of the 95% interval

    def __post_init__(self):
        self.data_root, self.out_dir, self.cache_dir = Path(self.data_root), Path(self.out_dir), Path(self.cache_dir)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", s).strip("_") or "model"


def result_dir(out_dir: Path, encoder: BenchEncoder) -> Path:
    return Path(out_dir) / slug(encoder.model_id) / slug(encoder.revision)


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


MTEB_LANGUAGES = ["eng-Latn"]  # MTEB's language codes (ISO 639-3 + script) for English text


def _base_record(spec: TaskSpec, encoder: BenchEncoder) -> dict[str, Any]:
    """The fields every result file has. MTEB's result loader (``mteb.ResultCache().load_results``) reads every
    ``<task>.json`` of a folder, so a task that did not run still carries MTEB's required fields, with no scores
    (``run_task`` fills them for a task that ran)."""
    import geovec

    return {
        "task_name": spec.name, "suite": spec.suite, "meta_task": spec.meta_task, "dataset": spec.dataset,
        "split": spec.split, "main_score_name": spec.main_score,
        "model_name": encoder.model_id, "model_revision": encoder.revision,
        "dataset_revision": "dataset revision not available", "scores": {}, "evaluation_time": None,
        "mteb_version": None, "geovec_version": geovec.__version__, "kg_co2_emissions": None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task_metadata": spec.metadata(),
    }


def dataset_fingerprint(data: TaskData | MultiTaskData) -> str:
    """Content fingerprint of what a task evaluates: every query and candidate item (image bytes, text, boxes,
    places) and the golds. It is the result's ``dataset_revision``: two results with the same fingerprint ranked
    the same queries against the same candidates."""
    h = hashlib.sha1()
    memo: dict[int, str] = {}
    for name, part in _parts(data).items():
        h.update(name.encode())
        for items in (part.queries, part.candidates):
            for i, it in enumerate(items):
                if id(it) not in memo:
                    memo[id(it)] = parse_item(it, i).content_key()
                h.update(memo[id(it)].encode())
            h.update(b"|")
        h.update(json.dumps(part.gold, default=_json_default).encode())
    return h.hexdigest()


def _parts(data: TaskData | MultiTaskData) -> dict[str, TaskData]:
    return data.parts if isinstance(data, MultiTaskData) else {"": data}


def _main_parts(data: TaskData | MultiTaskData) -> tuple[str, ...]:
    return data.main_parts if isinstance(data, MultiTaskData) else ("",)


def score_part(data: TaskData, Q: np.ndarray, C: np.ndarray, main_score: str) -> tuple[dict[str, Any], QueryScores]:
    """All metrics of one ranking, and the per-query values of its main metric."""
    ranking = rank_golds(Q, C, data.gold, data.query_groups, data.candidate_groups, data.exclude)
    scores: dict[str, Any] = summarize(ranking)
    scores["effective_chance_p@1"] = scores["chance_p@1"]
    if data.within_groups is not None:
        within = rank_golds(Q, C, data.gold, data.within_groups[0], data.within_groups[1], data.exclude)
        w = summarize(within)
        scores["within_group"] = {k: w[k] for k in ("p@1", "hit@5", "mrr", "chance_p@1")}
        scores["within_group"]["mean_group_size"] = float(np.mean(within.n_allowed))
        # a query's candidates in other groups differ in the whole image: the ones it can really confuse are
        # those of its own group, so the effective chance is the within-group one
        scores["effective_chance_p@1"] = w["chance_p@1"]
    breakdowns = dict(data.query_facets or {})
    if data.query_labels is not None:
        breakdowns = {"label": data.query_labels, **breakdowns}
    if breakdowns:
        hits = np.asarray([hit_at_k(r, 1) for r in ranking.gold_ranks], dtype=np.float64)
        cl = None if data.query_clusters is None else np.asarray([str(c) for c in data.query_clusters])
        for facet, facet_labels in breakdowns.items():
            labels = np.asarray([str(x) for x in facet_labels])
            keys = sorted(set(labels.tolist()))
            scores[f"p@1_by_{facet}"] = {k: float(hits[labels == k].mean()) for k in keys}
            scores[f"n_by_{facet}"] = {k: int((labels == k).sum()) for k in keys}
            scores[f"p@1_ci95_by_{facet}"] = {  # same bootstrap as the main interval, inside each label
                k: list(bootstrap_ci(QueryScores(hits[labels == k], np.zeros(int((labels == k).sum()), dtype=str),
                                                 None if cl is None else cl[labels == k])))
                for k in keys}
        if data.query_labels is not None:
            scores["p@1_mean_over_labels"] = float(np.mean(list(scores["p@1_by_label"].values())))
    if data.query_latlon is not None and data.candidate_latlon is not None:
        scores.update(geo_errors(ranking, data.query_latlon, data.candidate_latlon))
    values = per_query_values(ranking, main_score)
    by_label = data.info.get("main_score_aggregation") == "mean over query_labels" and data.query_labels is not None
    groups = np.asarray([str(x) for x in data.query_labels]) if by_label else np.zeros(len(values), dtype=str)
    clusters = None if data.query_clusters is None else np.asarray([str(c) for c in data.query_clusters])
    qs = QueryScores(values, groups, clusters)
    if by_label:
        scores[f"{main_score}_mean_over_queries"] = scores.get(main_score)
        scores[f"{main_score}_by_label"] = {g: float(values[groups == g].mean()) for g in np.unique(groups)}
    scores[main_score] = qs.score()
    return scores, qs


def combine_parts(part_scores: dict[str, QueryScores], main_parts: Sequence[str]) -> QueryScores:
    """One :class:`QueryScores` over the main parts: each part (and each label group inside it) is a group, and
    clusters are made unique per part."""
    vals, groups, clusters = [], [], []
    for name in main_parts:
        qs = part_scores[name]
        vals.append(qs.values)
        groups.append(np.char.add(f"{name}:", qs.groups))
        c = qs.clusters if qs.clusters is not None else np.arange(qs.n).astype(str)
        clusters.append(np.char.add(f"{name}:", c))
    n_groups_per_part = [len(np.unique(part_scores[p].groups)) for p in main_parts]
    if len(set(n_groups_per_part)) > 1:
        raise ValueError("main parts must have the same number of label groups")
    return QueryScores(np.concatenate(vals), np.concatenate(groups), np.concatenate(clusters))


def score_task(data: TaskData | MultiTaskData, embeddings: dict[str, tuple[np.ndarray, np.ndarray]],
               main_score: str, n_boot: int = 1000, seed: int = 0) -> tuple[dict[str, Any], QueryScores]:
    """Scores of a task from its parts' (query, candidate) embeddings: the main score with ``n_queries`` and a
    95% bootstrap interval ``ci95`` (resampling queries, seeded), every metric of every part, and the per-query
    values of the main metric (for paired comparisons)."""
    parts = _parts(data)
    per_part, qss = {}, {}
    for name, part in parts.items():
        Q, C = embeddings[name]
        per_part[name], qss[name] = score_part(part, Q, C, main_score)
    main = _main_parts(data)
    qs = combine_parts(qss, main) if len(main) > 1 else qss[main[0]]
    lo, hi = bootstrap_ci(qs, n_boot=n_boot, seed=seed)
    if isinstance(data, MultiTaskData):
        scores: dict[str, Any] = {"main_score": qs.score(), main_score: qs.score()}
        paired = data.info.get("paired_parts")
        if paired:  # B - A of two parts that ask the same queries another way (e.g. held-out vs template phrasing)
            a, b = paired
            scores[f"{b}_minus_{a}"] = paired_bootstrap(qss[a], qss[b], n_boot=n_boot, seed=seed)
        for name, ps in per_part.items():
            for k in ("hit@1", "hit@5", "hit@10", "mrr", "map", "ndcg@10"):
                scores[f"{name}_{k}"] = ps[k]
            scores[f"{name}_{main_score}"] = ps[main_score]
        scores["mrr"] = float(np.mean([per_part[p]["mrr"] for p in main]))
        extra = [p for p in parts if p not in main]
        if extra and all(p.endswith("_distinct") for p in extra):
            scores[f"{main_score}_distinct"] = float(np.mean([per_part[p][main_score] for p in extra]))
        scores["parts"] = per_part
        scores["chance_p@1"] = float(np.mean([per_part[p]["chance_p@1"] for p in main]))
        scores["effective_chance_p@1"] = float(np.mean([per_part[p]["effective_chance_p@1"] for p in main]))
    else:
        scores = {"main_score": qs.score(), **per_part[""]}
    scores.update(n_queries=qs.n, ci95=[lo, hi], ci_method=f"percentile bootstrap over queries, {n_boot} resamples, "
                                                             f"seed {seed}" + (", clustered" if qs.clusters is not None else ""))
    return scores, qs


def _with_instructions_all(data, encoder, spec):
    out = {}
    for name, part in _parts(data).items():
        out[name] = (encoder.instructed(part.queries, spec.query_kind, "query", spec.query_instruction),
                     encoder.instructed(part.candidates, spec.candidate_kind, "document", spec.candidate_instruction))
    return out


def run_task(spec: TaskSpec, encoder: BenchEncoder, cfg: RunConfig, cache: EmbeddingCache) -> dict[str, Any]:
    folder = result_dir(cfg.out_dir, encoder)
    path = folder / f"{spec.name}.json"
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
    if cfg.max_queries:
        data = subsample_queries(data, cfg.max_queries, seed=cfg.seed)
    fingerprint = dataset_fingerprint(data)
    t_build = time.perf_counter() - t0
    items = _with_instructions_all(data, encoder, spec)
    t1 = time.perf_counter()
    embeddings = {}
    for name, (q_items, c_items) in items.items():
        label = f"{spec.name}{'/' + name if name else ''}"
        embeddings[name] = (cache.embed(encoder, q_items, desc=f"{label} queries", progress=cfg.progress),
                            cache.embed(encoder, c_items, desc=f"{label} candidates", progress=cfg.progress))
    ensemble = prompt_ensemble_scores(data, embeddings, encoder, spec, cache, cfg) if cfg.prompt_ensemble else None
    t_embed = time.perf_counter() - t1
    t2 = time.perf_counter()
    scores, qs = score_task(data, embeddings, spec.main_score, n_boot=cfg.n_boot, seed=cfg.seed)
    if ensemble is not None:
        scores.update(ensemble)
    t_metrics = time.perf_counter() - t2
    total = time.perf_counter() - t0
    split_key = spec.split.split()[0]
    parts = _parts(data)
    record.update(
        status="ok",
        dataset_revision=fingerprint,
        protocol=data.info.get("protocol") or spec.protocol,
        scores={split_key: [{"main_score": scores["main_score"], "hf_subset": "default",
                             "languages": MTEB_LANGUAGES, **scores}]},
        evaluation_time=total,
        n_queries=qs.n, n_candidates=sum(len(p.candidates) for p in parts.values()) if len(parts) > 1
        else len(parts[""].candidates),
        max_queries=cfg.max_queries or None,
        task_info=data.info if isinstance(data, MultiTaskData) else parts[""].info,
        timing={"build_s": t_build, "embed_s": t_embed, "encode_s": encoder.encode_seconds - enc0,
                "forward_s": encoder.forward_seconds - fwd0, "content_key_s": cache.key_seconds - key0,
                "metrics_s": t_metrics, "total_s": total,
                "cache_hits": cache.hits - hits0, "cache_misses": cache.misses - miss0},
    )
    _write_json(folder / "per_query" / f"{spec.name}.json",
                {"task_name": spec.name, "dataset_revision": fingerprint, "metric": spec.main_score,
                 "max_queries": cfg.max_queries or None, "seed": cfg.seed, **qs.to_json()})
    _write_json(path, record)
    return record


def prompt_ensemble_scores(data, embeddings, encoder, spec, cache, cfg) -> dict[str, Any] | None:
    """Classification extra (RS-TransCLIP's prompt average): each class = the mean of its normalised embeddings
    under every template of ``info["templates"]``; P@1 with its interval."""
    if isinstance(data, MultiTaskData) or not data.info.get("templates") or not data.info.get("class_names"):
        return None
    templates, names = data.info["templates"], data.info["class_names"]
    texts = [{"text": t.format(n)} for n in names for t in templates]
    items = encoder.instructed(texts, spec.candidate_kind, "document", spec.candidate_instruction)
    E = l2_normalize(cache.embed(encoder, items, desc=f"{spec.name} prompt ensemble", progress=cfg.progress))
    C = E.reshape(len(names), len(templates), -1).mean(axis=1)
    Q = embeddings[""][0]
    ranking = rank_golds(Q, C, data.gold, data.query_groups, data.candidate_groups, data.exclude)
    clusters = None if data.query_clusters is None else np.asarray([str(c) for c in data.query_clusters])
    qs = QueryScores(per_query_values(ranking, "p@1"), np.zeros(len(data.gold), dtype=str), clusters)
    return {"p@1_prompt_ensemble": qs.score(), "p@1_prompt_ensemble_ci95": list(bootstrap_ci(qs, cfg.n_boot, cfg.seed)),
            "n_templates": len(templates)}


def write_model_meta(folder: Path, encoder: BenchEncoder) -> None:
    """``model_meta.json``: MTEB's ``ModelMeta`` fields (as ``ModelMeta.to_dict()`` writes them), as far as the model
    tells them; it validates as ``mteb.ModelMeta`` and names the model as :mod:`geovec.integrations.mteb` does."""
    model = encoder.model
    cfg = getattr(model, "config", None)
    n_params = None
    counts = getattr(model, "parameter_counts", None)
    if callable(counts):
        try:
            n_params = int(counts().get("total"))
        except Exception:  # a model's own bookkeeping must not stop a benchmark run
            n_params = None
    dim = getattr(model, "embed_dim", None) or getattr(cfg, "embed_dim", None)  # the output width (dual-path: 2 halves)
    date = re.search(r"(\d{4}-\d{2}-\d{2})", str(encoder.revision))
    # MTEB names models "organization/model": geovec/<model id> unless the id already has an organization
    name = encoder.model_id if "/" in encoder.model_id else f"geovec/{encoder.model_id}"
    meta = {
        "loader": "geovec_loader", "loader_kwargs": {}, "name": name,
        "revision": encoder.revision, "release_date": date.group(1) if date else None,
        "languages": MTEB_LANGUAGES, "n_parameters": n_params, "n_active_parameters_override": None,
        "n_embedding_parameters": None, "memory_usage_mb": round(n_params * 4 / 2**20, 1) if n_params else None,
        "max_tokens": getattr(cfg, "max_text_tokens", None), "embed_dim": int(dim) if dim else None,
        "license": "apache-2.0", "open_weights": True, "public_training_code": None, "public_training_data": None,
        "framework": ["PyTorch"], "reference": None, "similarity_fn_name": "cosine", "use_instructions": True,
        "training_datasets": (getattr(cfg, "extra", {}) or {}).get("training_datasets") if cfg is not None else None,
        "adapted_from": None, "superseded_by": None, "modalities": ["image", "text"], "model_type": ["dense"],
        "citation": None, "contacts": None, "experiment_kwargs": None, "output_dtypes": None,
        "extra_requirements_groups": None,
    }
    _write_json(folder / "model_meta.json", meta)


def run_benchmark(specs: Sequence[TaskSpec], encoder: BenchEncoder, cfg: RunConfig,
                  log=print) -> list[dict[str, Any]]:
    """Run ``specs`` in order; writes each task's JSON and the markdown summary; returns the records."""
    from geovec.bench.report import write_summary

    cache = EmbeddingCache(cfg.cache_dir, enabled=cfg.use_cache)
    write_model_meta(result_dir(cfg.out_dir, encoder), encoder)
    records = []
    try:
        for i, spec in enumerate(specs):
            rec = run_task(spec, encoder, cfg, cache)
            records.append(rec)
            if rec.get("status") == "ok":
                sc = rec["scores"][next(iter(rec["scores"]))][0]
                note = " (already done, skipped)" if rec.get("_skipped") else f" in {rec['evaluation_time']:.1f} s"
                ci = sc.get("ci95")
                ci_txt = f" [95% CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f}, n={sc.get('n_queries')}]" if ci else ""
                log(f"[{i + 1}/{len(specs)}] {spec.name}: {spec.main_score} = {100 * sc['main_score']:.2f}{ci_txt}{note}")
            else:
                log(f"[{i + 1}/{len(specs)}] {spec.name}: not run ({rec['reason'].splitlines()[0]})")
    finally:
        cache.close()
    write_summary(result_dir(cfg.out_dir, encoder))
    return records
