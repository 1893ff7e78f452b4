"""What a task builder returns: queries, candidates and the gold candidates of every query."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


@dataclass
class BuildContext:
    """Where builders read data (``data_root``) and keep what they build (``cache_dir``); ``seed`` fixes
    every random choice of a constructed task."""

    data_root: Path
    cache_dir: Path
    seed: int = 0

    def __post_init__(self):
        self.data_root = Path(self.data_root)
        self.cache_dir = Path(self.cache_dir)


@dataclass
class TaskData:
    """One ranking task, ready to embed.

    ``queries`` / ``candidates``: geovec item dicts (keys ``image, text, box, lat, lon``), without instruction
    (the runner adds the model's instruction for the task kind). ``gold[q]``: indices of the correct candidates.
    ``query_groups`` / ``candidate_groups``: when set, a query is ranked only against the candidates of its own
    group (protocol restriction, e.g. the answers of its question type). ``within_groups``: an extra pair of
    group labels for a *second* report "within group" (e.g. the regions of the query's own mosaic).
    ``exclude[q]``: a candidate index (or a list of them) never ranked for query q (the query itself in
    region <-> region; every object of the query's own image across images).
    ``query_labels``: per-query label for a per-label breakdown of P@1 (e.g. question type).
    ``query_facets``: more breakdowns of P@1, facet name -> one label per query (e.g. ``{"size": [...]}``),
    reported as ``p@1_by_<facet>`` with n and intervals.
    ``query_latlon`` / ``candidate_latlon``: (N, 2) (lat, lon) degrees for distance metrics.
    ``query_clusters``: per-query resampling unit of the bootstrap (queries of one cluster, e.g. the chips of one
    scene, are correlated and resampled together).
    ``info["main_score_aggregation"] == "mean over query_labels"``: the main score is the mean of the per-label
    means (PatternCom: mean of per-attribute mAP) instead of the mean over queries.
    """

    queries: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    gold: list[list[int]]
    query_groups: Sequence | None = None
    candidate_groups: Sequence | None = None
    within_groups: tuple[Sequence, Sequence] | None = None
    exclude: Sequence[int | Sequence[int] | None] | None = None
    query_labels: Sequence[str] | None = None
    query_facets: dict[str, Sequence[str]] | None = None
    query_latlon: np.ndarray | None = None
    candidate_latlon: np.ndarray | None = None
    query_clusters: Sequence | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.gold) != len(self.queries):
            raise ValueError(f"{len(self.queries)} queries but {len(self.gold)} gold lists")
        if not self.queries or not self.candidates:
            raise ValueError("a task needs at least one query and one candidate")


@dataclass
class MultiTaskData:
    """A task scored over several rankings, e.g. image -> text and text -> image of one retrieval dataset.

    ``parts``: name -> :class:`TaskData`; ``main_parts``: the parts whose main metric makes the task's main score
    (mean over those parts of each part's mean; the bootstrap resamples inside each part). Other parts are
    reported as extras (e.g. the distinct-caption variant of retrieval).
    """

    parts: dict[str, TaskData]
    main_parts: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        missing = [p for p in self.main_parts if p not in self.parts]
        if missing or not self.main_parts:
            raise ValueError(f"main parts {missing or list(self.main_parts)} not among parts {list(self.parts)}")


def _take(seq, idx):
    if seq is None:
        return None
    if isinstance(seq, np.ndarray):
        return seq[idx]
    return [seq[i] for i in idx]


def subsample_queries(data: "TaskData | MultiTaskData", max_queries: int, seed: int = 0) -> "TaskData | MultiTaskData":
    """A seeded random subset of at most ``max_queries`` queries per ranking (all candidates kept), for quick
    evaluations (e.g. during training); the interval of the result widens accordingly."""
    if isinstance(data, MultiTaskData):
        return MultiTaskData({k: subsample_queries(v, max_queries, seed) for k, v in data.parts.items()},
                             data.main_parts, dict(data.info, max_queries=max_queries))
    n = len(data.queries)
    if max_queries <= 0 or n <= max_queries:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False)).tolist()
    within = None if data.within_groups is None else (_take(data.within_groups[0], idx), data.within_groups[1])
    return TaskData(_take(data.queries, idx), data.candidates, _take(data.gold, idx),
                    query_groups=_take(data.query_groups, idx), candidate_groups=data.candidate_groups,
                    within_groups=within, exclude=_take(data.exclude, idx), query_labels=_take(data.query_labels, idx),
                    query_latlon=_take(data.query_latlon, idx), candidate_latlon=data.candidate_latlon,
                    query_clusters=_take(data.query_clusters, idx),
                    query_facets=None if data.query_facets is None
                    else {k: _take(v, idx) for k, v in data.query_facets.items()},
                    info=dict(data.info, max_queries=max_queries, n_queries_full=n))
