"""Ranking metrics with several gold candidates per query, from exact cosine search.

Every RSMEB task is "rank the candidates for a query". :func:`rank_golds` scores queries against candidates
(exact inner product of L2-normalised embeddings, in query chunks so big pools fit in memory) and returns,
per query, the 1-based ranks of its gold candidates. The metrics are then small functions of those ranks.

Conventions
-----------
* ``hit@k``: 1 if *any* gold is in the top k. This is the ``R@k`` of the remote-sensing retrieval papers
  (RSICD, RemoteCLIP, GeoRSCLIP: "an image is retrieved correctly if one of its 5 captions is in the top k")
  and the ``R@k`` of the RSMEB spec. ``p@1`` = ``hit@1`` (top-1 accuracy for classification).
* ``recall@k``: the fraction of a query's golds in the top k (MTEB/BEIR recall).
* ``mrr``: mean reciprocal rank of the first gold (full ranking, no cut-off).
* ``ndcg@10``: binary relevance, ideal DCG from ``min(n_gold, 10)`` golds.
* ``map``: mean average precision over all golds (full ranking).
* ``mR``: mean of hit@1/5/10 (one retrieval direction; the dataset-level mR averages both directions).
* Ties are broken *against* the golds (a non-gold with the same score ranks first), so a degenerate model
  that gives every candidate the same score gets chance-level numbers, never a perfect one.
* All scores are fractions in [0, 1] (MTEB style); tables show percentages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

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


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def rank_golds(
    queries: np.ndarray,
    candidates: np.ndarray,
    gold: Sequence[Sequence[int]],
    query_groups: Sequence | None = None,
    candidate_groups: Sequence | None = None,
    exclude: Sequence[int | None] | None = None,
    chunk: int = 512,
) -> Ranking:
    """Rank all candidates for every query by cosine similarity and locate the golds.

    ``gold[q]``: indices into ``candidates`` that are correct for query q (at least one).
    With ``query_groups``/``candidate_groups``, query q is ranked only against candidates of its own
    group (e.g. the regions of its own mosaic, or the answers of its question type). ``exclude[q]``: a
    candidate index that is never ranked for query q (None for none), e.g. the query itself.
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
                if exclude[qi] is not None and exclude[qi] >= 0:
                    allowed[row, int(exclude[qi])] = False
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
    out: dict[str, float] = {"p@1": float(np.mean([hit_at_k(x, 1) for x in r]))}
    for k in ks:
        out[f"hit@{k}"] = float(np.mean([hit_at_k(x, k) for x in r]))
    for k in ks:
        out[f"recall@{k}"] = float(np.mean([recall_at_k(x, k) for x in r]))
    out["mR"] = float(np.mean([out[f"hit@{k}"] for k in KS]))
    out["mrr"] = float(np.mean([reciprocal_rank(x) for x in r]))
    out["ndcg@10"] = float(np.mean([ndcg_at_k(x, 10) for x in r]))
    out["map"] = float(np.mean([average_precision(x) for x in r]))
    out["chance_p@1"] = float(np.mean([x.size / n for x, n in zip(r, ranking.n_allowed)]))
    out["n_queries"] = len(r)
    return out


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in WGS84 degrees (sphere of radius 6371.0088 km)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def geo_errors(ranking: Ranking, query_latlon: np.ndarray, candidate_latlon: np.ndarray,
               thresholds_km: Sequence[float] = (1, 25, 200)) -> dict[str, float]:
    """Distance between each query's true place and its top-1 candidate's place: median error in km and the
    share of queries within each threshold. ``*_latlon`` are (N, 2) arrays of (lat, lon) degrees."""
    q = np.asarray(query_latlon, dtype=np.float64)
    c = np.asarray(candidate_latlon, dtype=np.float64)[ranking.top1]
    err = haversine_km(q[:, 0], q[:, 1], c[:, 0], c[:, 1])
    out = {"median_error_km": float(np.median(err)), "mean_error_km": float(np.mean(err))}
    for t in thresholds_km:
        out[f"within_{t:g}km"] = float(np.mean(err <= t))
    return out
