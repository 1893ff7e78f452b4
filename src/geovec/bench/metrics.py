"""Ranking metrics with several gold candidates per query, from exact cosine search, and their bootstrap intervals.

:func:`rank_golds` scores queries against candidates (exact inner product of L2-normalised embeddings, in query
chunks) and returns, per query, the 1-based ranks of its golds; the metrics are small functions of those ranks.
``hit@k`` (any gold in the top k) is the ``R@k`` of the remote-sensing retrieval papers, ``recall@k`` the MTEB
one; ties are broken *against* the golds, so a constant model scores chance. Scores are fractions in [0, 1]. The
definitions users see are in docs/benchmark.md ("Protocols").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geovec.domain import haversine_km  # noqa: F401  (re-exported: bench code measures distances)
from geovec.models.contract import l2_normalize  # noqa: F401  (re-exported: the runner normalises with it)

KS = (1, 5, 10)


@dataclass
class Ranking:
    """Per-query ranking outcome.

    ``gold_ranks[q]``: sorted 1-based ranks of query q's golds among its allowed candidates.
    ``n_allowed[q]``: how many candidates query q was ranked against. ``top1[q]``: index of the top candidate.
    """

    gold_ranks: list[np.ndarray]
    n_allowed: np.ndarray
    top1: np.ndarray




def rank_golds(
    queries: np.ndarray,
    candidates: np.ndarray,
    gold: Sequence[Sequence[int]],
    query_groups: Sequence | None = None,
    candidate_groups: Sequence | None = None,
    exclude: Sequence | None = None,
    chunk: int = 512,
) -> Ranking:
    """Rank all candidates for every query by cosine similarity and locate the golds.

    ``gold[q]``: indices into ``candidates`` that are correct for query q (at least one).
    With ``query_groups``/``candidate_groups``, query q is ranked only against candidates of its own
    group (e.g. the regions of its own mosaic, or the answers of its question type). ``exclude[q]``: a
    candidate index, or a list of them, never ranked for query q (None for none), e.g. the query itself.
    """
    q = l2_normalize(queries)
    c = l2_normalize(candidates)
    nq, nc = q.shape[0], c.shape[0]
    if len(gold) != nq:
        raise ValueError(f"{nq} queries but {len(gold)} gold lists")
    restrict = query_groups is not None
    if restrict:
        qg = np.asarray(query_groups)
        cg = np.asarray(candidate_groups)
        if candidate_groups is None or len(cg) != nc or len(qg) != nq:
            raise ValueError("query_groups and candidate_groups must both be given, one per query / candidate")
    gold_ranks: list[np.ndarray] = []
    n_allowed = np.empty(nq, dtype=np.int64)
    top1 = np.empty(nq, dtype=np.int64)
    for start in range(0, nq, chunk):
        stop = min(nq, start + chunk)
        scores = q[start:stop] @ c.T  # (b, nc) exact inner product = cosine
        is_gold = np.zeros(scores.shape, dtype=bool)
        for row, qi in enumerate(range(start, stop)):
            g = np.asarray(gold[qi], dtype=np.int64)
            if g.size == 0:
                raise ValueError(f"query {qi} has no gold candidate")
            if g.min() < 0 or g.max() >= nc:
                raise ValueError(f"query {qi}: gold index out of range 0..{nc - 1}")
            is_gold[row, g] = True
        allowed = np.ones(scores.shape, dtype=bool)
        if restrict:
            allowed = qg[start:stop, None] == cg[None, :]
        if exclude is not None:
            for row, qi in enumerate(range(start, stop)):
                if exclude[qi] is not None:
                    idx = np.atleast_1d(np.asarray(exclude[qi], dtype=np.int64))
                    allowed[row, idx[idx >= 0]] = False
        if np.any(is_gold & ~allowed):
            raise ValueError("a gold candidate lies outside its query's group or is excluded")
        scores = np.where(allowed, scores, -np.inf)
        # primary key: score descending; ties: non-gold (0) before gold (1)
        order = np.lexsort((is_gold, -scores), axis=-1)
        sorted_gold = np.take_along_axis(is_gold, order, axis=1)
        for row in range(stop - start):
            gold_ranks.append(np.flatnonzero(sorted_gold[row]) + 1)
        n_allowed[start:stop] = allowed.sum(axis=1)
        top1[start:stop] = order[:, 0]
    return Ranking(gold_ranks, n_allowed, top1)


# --- per-query metric functions of the gold ranks --------------------------------------------------------
def hit_at_k(ranks: np.ndarray, k: int) -> float:
    return float(ranks.size > 0 and ranks[0] <= k)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    return float(np.sum(ranks <= k) / ranks.size)


def reciprocal_rank(ranks: np.ndarray) -> float:
    return float(1.0 / ranks[0])


def ndcg_at_k(ranks: np.ndarray, k: int = 10) -> float:
    dcg = float(np.sum(1.0 / np.log2(ranks[ranks <= k] + 1.0)))
    ideal = float(np.sum(1.0 / np.log2(np.arange(1, min(ranks.size, k) + 1) + 1.0)))
    return dcg / ideal


def average_precision(ranks: np.ndarray) -> float:
    return float(np.mean(np.arange(1, ranks.size + 1) / ranks))


def summarize(ranking: Ranking, ks: Sequence[int] = KS) -> dict[str, float]:
    """Mean metrics over queries (fractions in [0, 1]) plus the chance level of P@1."""
    r = ranking.gold_ranks
    names = ("p@1", *(f"hit@{k}" for k in ks), *(f"recall@{k}" for k in ks), "mR", "mrr", "ndcg@10", "map")
    out: dict[str, float] = {n: float(np.mean(per_query_values(ranking, n))) for n in names}
    out["chance_p@1"] = float(np.mean([x.size / n for x, n in zip(r, ranking.n_allowed)]))
    out["n_queries"] = len(r)
    return out


def geo_errors(ranking: Ranking, query_latlon: np.ndarray, candidate_latlon: np.ndarray,
               thresholds_km: Sequence[float] | None = None) -> dict[str, float]:
    """Distance between each query's true place and its top-1 candidate's place: median error in km and the
    share of queries within each threshold. ``*_latlon`` are (N, 2) arrays of (lat, lon) degrees."""
    q = np.asarray(query_latlon, dtype=np.float64)
    c = np.asarray(candidate_latlon, dtype=np.float64)[ranking.top1]
    err = haversine_km(q[:, 0], q[:, 1], c[:, 0], c[:, 1])
    out = {"median_error_km": float(np.median(err)), "mean_error_km": float(np.mean(err))}
    for t in (GEO_THRESHOLDS_KM if thresholds_km is None else thresholds_km):
        out[f"within_{t:g}km"] = float(np.mean(err <= t))
    return out


# --- per-query values of a main metric, bootstrap intervals, paired comparison ---------------------------------
GEO_THRESHOLDS_KM = (1, 25, 200, 750, 2500)  # im2gps / GeoCLIP accuracy thresholds


def per_query_values(ranking: Ranking, metric: str) -> np.ndarray:
    """One value per query whose mean is ``metric`` (``p@1``, ``hit@k``, ``recall@k``, ``mR``, ``mrr``,
    ``map``, ``ndcg@10``): the unit the bootstrap resamples."""
    r = ranking.gold_ranks
    if metric == "p@1":
        return np.array([hit_at_k(x, 1) for x in r])
    if metric == "mR":
        return np.array([np.mean([hit_at_k(x, k) for k in KS]) for x in r])
    if metric == "mrr":
        return np.array([reciprocal_rank(x) for x in r])
    if metric == "map":
        return np.array([average_precision(x) for x in r])
    if metric.startswith("hit@"):
        k = int(metric[4:])
        return np.array([hit_at_k(x, k) for x in r])
    if metric.startswith("recall@"):
        k = int(metric[7:])
        return np.array([recall_at_k(x, k) for x in r])
    if metric.startswith("ndcg@"):
        k = int(metric[5:])
        return np.array([ndcg_at_k(x, k) for x in r])
    raise ValueError(f"no per-query form for metric {metric!r}")


@dataclass
class QueryScores:
    """Per-query values of a task's main metric and how they aggregate.

    The main score is the mean over ``groups`` of the mean value inside each group (one group: the plain mean;
    groups = retrieval directions gives mR over both directions; groups = PatternCom attributes gives the mean of
    per-attribute mAP). ``clusters`` (optional) are the resampling units inside a group: queries that share a
    cluster (e.g. chips of one scene) are resampled together, so correlated queries do not shrink the interval.
    """

    values: np.ndarray
    groups: np.ndarray
    clusters: np.ndarray | None = None

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        self.groups = np.asarray(self.groups).astype(str)
        if self.clusters is not None:
            self.clusters = np.asarray(self.clusters).astype(str)
        if len(self.groups) != len(self.values) or (self.clusters is not None and len(self.clusters) != len(self.values)):
            raise ValueError("values, groups and clusters must have one entry per query")

    @property
    def n(self) -> int:
        return int(self.values.size)

    def score(self) -> float:
        return float(np.mean([self.values[self.groups == g].mean() for g in np.unique(self.groups)]))

    def _units(self):
        """Per group: per-unit value sums and query counts (a unit = a cluster, or a single query)."""
        out = []
        for g in np.unique(self.groups):
            m = self.groups == g
            v = self.values[m]
            if self.clusters is None:
                out.append((v, np.ones_like(v)))
            else:
                _, inv = np.unique(self.clusters[m], return_inverse=True)
                out.append((np.bincount(inv, weights=v), np.bincount(inv).astype(np.float64)))
        return out

    def to_json(self) -> dict:
        return {"values": [round(float(v), 6) for v in self.values], "groups": self.groups.tolist(),
                "clusters": None if self.clusters is None else self.clusters.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "QueryScores":
        return cls(np.asarray(d["values"]), np.asarray(d["groups"]), None if d.get("clusters") is None else np.asarray(d["clusters"]))


def _bootstrap_scores(structure, draws) -> np.ndarray:
    per_group = [sums[idx].sum(1) / counts[idx].sum(1) for (sums, counts), idx in zip(structure, draws)]
    return np.mean(per_group, axis=0)


def _mean_boots(tasks: Sequence[QueryScores], n_boot: int, seed: int,
                paired: Sequence[QueryScores] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Bootstrap draws of the mean over ``tasks`` of their scores (each task resampled inside its groups, one
    generator for all); with ``paired`` (the same queries scored by another model) the same draws score those."""
    rng = np.random.default_rng(seed)
    boots, other = [], []
    for i, qs in enumerate(tasks):
        structure = qs._units()
        draws = [rng.integers(0, len(sums), size=(n_boot, len(sums))) for sums, _ in structure]
        boots.append(_bootstrap_scores(structure, draws))
        if paired is not None:
            other.append(_bootstrap_scores(paired[i]._units(), draws))
    return np.mean(boots, axis=0), None if paired is None else np.mean(other, axis=0)


def mean_ci(tasks: Sequence[QueryScores], n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> tuple[float, float, float]:
    """(mean of the tasks' scores, percentile bootstrap interval): every task resampled independently, the mean
    taken per draw (a summary line over several tasks, e.g. "outside RSICD")."""
    boots, _ = _mean_boots(tasks, n_boot, seed)
    a = (1 - level) / 2
    return float(np.mean([t.score() for t in tasks])), float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def bootstrap_ci(qs: QueryScores, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``qs.score()``: resample units with replacement inside each group."""
    return mean_ci([qs], n_boot, seed, level)[1:]


def _check_paired(a: QueryScores, b: QueryScores) -> None:
    if a.n != b.n or not np.array_equal(a.groups, b.groups) or (
            (a.clusters is None) != (b.clusters is None)) or (a.clusters is not None and not np.array_equal(a.clusters, b.clusters)):
        raise ValueError("paired comparison needs the same queries in the same order for both models")


def paired_bootstrap_mean(a: Sequence[QueryScores], b: Sequence[QueryScores], n_boot: int = 2000, seed: int = 0,
                          level: float = 0.95) -> dict[str, float]:
    """Difference ``b - a`` of the mean over tasks of two models scored on the *same* queries of each task, with a
    paired bootstrap interval (the same resampled queries for both models) and a two-sided p-value (share of
    resamples on the other side of 0)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired comparison needs the same tasks for both models")
    for x, y in zip(a, b):
        _check_paired(x, y)
    boots_a, boots_b = _mean_boots(a, n_boot, seed, paired=b)
    delta = boots_b - boots_a
    q = (1 - level) / 2
    lo, hi = float(np.quantile(delta, q)), float(np.quantile(delta, 1 - q))
    p = float(min(1.0, 2 * min(np.mean(delta <= 0), np.mean(delta >= 0))))
    return {"delta": float(np.mean([y.score() - x.score() for x, y in zip(a, b)])), "ci95": [lo, hi], "p_value": p,
            "verdict": "better" if lo > 0 else "worse" if hi < 0 else "no change"}


def paired_bootstrap(a: QueryScores, b: QueryScores, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """:func:`paired_bootstrap_mean` of one task: ``b - a`` on the same queries with its paired interval."""
    return paired_bootstrap_mean([a], [b], n_boot, seed, level)
