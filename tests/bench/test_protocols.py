"""Published protocols and statistics: retrieval with duplicated caption slots (hand-computed), bootstrap
intervals that shrink with n, clustered resampling, paired comparisons."""

import numpy as np
import pytest

from geovec.bench import builders
from geovec.bench.metrics import QueryScores, bootstrap_ci, paired_bootstrap
from geovec.bench.runner import score_task
from geovec.bench.task_data import MultiTaskData, subsample_queries

TEXT = {"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0], "z": [0.0, 0.0, 1.0]}
IMAGE = {"I0": [0.9, 0.1, 0.0], "I1": [0.1, 0.0, 0.9]}


def _embed(items):
    return np.array([IMAGE[it["image"]] if "image" in it else TEXT[it["text"]] for it in items], dtype=np.float32)


def _embeddings(data: MultiTaskData):
    return {k: (_embed(p.queries), _embed(p.candidates)) for k, p in data.parts.items()}


SAMPLES = [{"image": "I0", "captions": ["x", "x", "y"], "caption_slots": ["x", "x", "y"]},
           {"image": "I1", "captions": ["x", "z", "z"], "caption_slots": ["x", "z", "z"]}]


def test_retrieval_ranks_every_caption_slot_hand_computed():
    data = builders.caption_retrieval_task(SAMPLES)
    assert len(data.parts["i2t"].candidates) == 6 and len(data.parts["t2i"].queries) == 6
    scores, qs = score_task(data, _embeddings(data), "mR")
    # i2t: I0's gold slots "x" tie with I1's slot "x" (ties count against the gold) -> rank 2; I1 -> rank 1
    assert scores["i2t_hit@1"] == pytest.approx(0.5)
    assert scores["i2t_hit@5"] == 1.0
    # t2i: 5 of 6 slots rank their image first; I1's slot "x" is closer to I0
    assert scores["t2i_hit@1"] == pytest.approx(5 / 6)
    assert scores["mR"] == pytest.approx((0.5 + 1 + 1 + 5 / 6 + 1 + 1) / 6)
    assert scores["main_score"] == scores["mR"]
    # the distinct-caption variant collapses the copies: every query finds a gold first
    assert scores["mR_distinct"] == pytest.approx(1.0)
    assert scores["n_queries"] == 2 + 6 == qs.n
    lo, hi = scores["ci95"]
    assert lo <= scores["mR"] <= hi


def test_empty_caption_slots_stay_queries():
    data = builders.caption_retrieval_task([{"image": "I0", "captions": ["x"], "caption_slots": ["x", " ."]}])
    assert [q["text"] for q in data.parts["t2i"].queries] == ["x", " ."]
    assert len(data.parts["i2t_distinct"].candidates) == 1


def test_bootstrap_interval_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 400, 4000):
        qs = QueryScores(rng.random(n) < 0.3, np.zeros(n))
        lo, hi = bootstrap_ci(qs, seed=0)
        assert lo <= qs.score() <= hi
        widths.append(hi - lo)
    assert widths[0] > 2 * widths[1] > 4 * widths[2]


def test_bootstrap_is_seeded():
    qs = QueryScores(np.arange(50) % 3 == 0, np.zeros(50))
    assert bootstrap_ci(qs, seed=3) == bootstrap_ci(qs, seed=3)


def test_clustered_queries_widen_the_interval():
    # 20 scenes x 10 chips; chips of a scene are all right or all wrong: 20 independent units, not 200
    scene_right = np.random.default_rng(1).random(20) < 0.5
    values = np.repeat(scene_right, 10).astype(float)
    clusters = np.repeat(np.arange(20), 10)
    flat = bootstrap_ci(QueryScores(values, np.zeros(200)))
    clustered = bootstrap_ci(QueryScores(values, np.zeros(200), clusters))
    assert (clustered[1] - clustered[0]) > 2 * (flat[1] - flat[0])


def test_main_score_is_mean_over_groups():
    qs = QueryScores([1, 1, 1, 0], ["a", "a", "a", "b"])
    assert qs.score() == pytest.approx(0.5)  # (1 + 0) / 2, not 3/4


def test_paired_bootstrap_verdicts():
    rng = np.random.default_rng(0)
    a = QueryScores((rng.random(500) < 0.4).astype(float), np.zeros(500))
    better = QueryScores(np.maximum(a.values, rng.random(500) < 0.3), np.zeros(500))
    same = QueryScores(a.values.copy(), np.zeros(500))
    r = paired_bootstrap(a, better)
    assert r["verdict"] == "better" and r["ci95"][0] > 0 and r["delta"] > 0
    assert paired_bootstrap(better, a)["verdict"] == "worse"
    assert paired_bootstrap(a, same)["verdict"] == "no change"
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(a, QueryScores(a.values[:10], np.zeros(10)))


def test_subsample_keeps_candidates_and_golds_aligned():
    data = builders.caption_retrieval_task(SAMPLES)
    small = subsample_queries(data, 3, seed=0)
    t2i = small.parts["t2i"]
    assert len(t2i.queries) == 3 and len(t2i.candidates) == 2
    full = data.parts["t2i"]
    for q, g in zip(t2i.queries, t2i.gold):
        i = next(i for i, fq in enumerate(full.queries) if fq is q)
        assert full.gold[i] == g
