import math

import numpy as np
import pytest

from geovec.bench.metrics import geo_errors, haversine_km, rank_golds, summarize


def embed_scores(scores):
    """Unit query [1, 0] and candidates whose cosine with it is exactly ``scores``."""
    s = np.asarray(scores, dtype=np.float64)
    c = np.stack([s, np.sqrt(1 - s**2)], axis=1)
    return np.array([[1.0, 0.0]]), c


def test_ranks_and_metrics_match_a_hand_computed_ranking():
    # candidates by score: c0 .9, c1 .8, c2 .7, c3 .6 -> golds c1, c3 sit at ranks 2 and 4
    q, c = embed_scores([0.9, 0.8, 0.7, 0.6])
    r = rank_golds(q, c, [[1, 3]])
    assert r.gold_ranks[0].tolist() == [2, 4]
    assert r.top1.tolist() == [0]
    s = summarize(r)
    assert s["p@1"] == 0 and s["hit@1"] == 0 and s["hit@5"] == 1
    assert s["recall@1"] == 0 and s["recall@5"] == 1
    assert s["mrr"] == pytest.approx(0.5)
    ideal = 1 + 1 / math.log2(3)
    assert s["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert s["map"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert s["chance_p@1"] == pytest.approx(2 / 4)
    assert s["mR"] == pytest.approx((0 + 1 + 1) / 3)


def test_hit_at_k_counts_any_gold_recall_counts_the_fraction():
    # 12 candidates, golds at ranks 1 and 12
    scores = np.linspace(0.95, 0.05, 12)
    q, c = embed_scores(scores)
    s = summarize(rank_golds(q, c, [[0, 11]]))
    assert s["hit@1"] == 1 and s["hit@10"] == 1
    assert s["recall@1"] == 0.5 and s["recall@10"] == 0.5
    assert s["ndcg@10"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_several_queries_average():
    q1, c = embed_scores([0.9, 0.5, 0.1])
    q = np.concatenate([q1, -q1])  # the second query reverses the order
    s = summarize(rank_golds(q, c, [[0], [0]]))
    assert s["p@1"] == 0.5
    assert s["mrr"] == pytest.approx((1 + 1 / 3) / 2)


def test_ties_count_against_the_gold():
    q, c = embed_scores([0.5, 0.5, 0.5])
    r = rank_golds(q, c, [[0]])
    assert r.gold_ranks[0].tolist() == [3]  # a constant model gets no free hits
    r = rank_golds(q, c, [[1, 2]])
    assert r.gold_ranks[0].tolist() == [2, 3]


def test_groups_restrict_the_candidates_and_set_chance():
    q, c = embed_scores([0.9, 0.8, 0.7, 0.6])
    r = rank_golds(q, c, [[2]], query_groups=["b"], candidate_groups=["a", "a", "b", "b"])
    assert r.gold_ranks[0].tolist() == [1]
    assert r.n_allowed.tolist() == [2]
    assert summarize(r)["chance_p@1"] == 0.5
    with pytest.raises(ValueError, match="outside"):
        rank_golds(q, c, [[0]], query_groups=["b"], candidate_groups=["a", "a", "b", "b"])


def test_exclude_drops_the_query_itself():
    q, c = embed_scores([0.9, 0.8, 0.7])
    r = rank_golds(q, c, [[2]], exclude=[0])
    assert r.gold_ranks[0].tolist() == [2] and r.n_allowed.tolist() == [2]


def test_chunking_gives_the_same_ranks():
    rng = np.random.default_rng(0)
    q, c = rng.standard_normal((37, 8)), rng.standard_normal((20, 8))
    gold = [[i % 20, (i * 7) % 20] for i in range(37)]
    a = rank_golds(q, c, gold, chunk=5)
    b = rank_golds(q, c, gold, chunk=512)
    assert all((x == y).all() for x, y in zip(a.gold_ranks, b.gold_ranks))


def test_bad_gold_is_rejected():
    q, c = embed_scores([0.9, 0.8])
    with pytest.raises(ValueError, match="no gold"):
        rank_golds(q, c, [[]])
    with pytest.raises(ValueError, match="out of range"):
        rank_golds(q, c, [[5]])


def test_haversine_and_geo_errors():
    assert haversine_km(0, 0, 1, 0) == pytest.approx(111.195, abs=0.01)  # one degree of latitude
    assert haversine_km(52, 5, 52, 5) == 0
    q, c = embed_scores([0.9, 0.8])
    r = rank_golds(q, c, [[1]])  # top-1 is candidate 0
    e = geo_errors(r, np.array([[0.0, 0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]), thresholds_km=(25, 200))
    assert e["median_error_km"] == pytest.approx(111.195, abs=0.01)
    assert e["within_25km"] == 0 and e["within_200km"] == 1
