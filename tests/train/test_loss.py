import math

import pytest
import torch
from torch.nn import functional as F

from geovec.train.loss import capped_scale, info_nce


def hand_info_nce(q, c, positive, scale, soft=False):
    """Literal per-pair formula from the module docstring, with Python loops (``soft``: the other positives stay
    in the denominator)."""
    q, c = F.normalize(q, dim=-1), F.normalize(c, dim=-1)
    total = 0.0
    for i in range(q.shape[0]):
        s = [scale * float(q[i] @ c[j]) for j in range(c.shape[0])]
        negs = [math.exp(s[j]) for j in range(c.shape[0]) if soft or not positive[i][j]]
        terms = [-math.log(math.exp(s[p]) / ((0 if soft else math.exp(s[p])) + sum(negs)))
                 for p in range(c.shape[0]) if positive[i][p]]
        total += sum(terms) / len(terms)
    return total / q.shape[0]


def test_single_positive_equals_cross_entropy():
    torch.manual_seed(0)
    q, c = torch.randn(5, 8), torch.randn(5, 8)
    pos = torch.eye(5, dtype=torch.bool)
    got = info_nce(q, c, pos, 20.0)
    ref = F.cross_entropy(20.0 * F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T, torch.arange(5))
    assert torch.allclose(got, ref, atol=1e-6)


def test_hard_negatives_and_multiple_positives_match_hand_computation():
    torch.manual_seed(1)
    q, c = torch.randn(3, 6), torch.randn(7, 6)
    # query 0: two positives (0, 1); query 1: positive 2; query 2: positives 3 and 4; 5, 6 = hard negatives only
    pos = torch.zeros(3, 7, dtype=torch.bool)
    pos[0, [0, 1]] = True
    pos[1, 2] = True
    pos[2, [3, 4]] = True
    got = float(info_nce(q, c, pos, 1 / 0.05))
    assert got == pytest.approx(hand_info_nce(q, c, pos.tolist(), 1 / 0.05), rel=1e-5)


def test_hard_negative_raises_the_loss_and_other_positives_do_not_compete():
    torch.manual_seed(2)
    q, c = torch.randn(2, 4), torch.randn(2, 4)
    pos = torch.eye(2, dtype=torch.bool)
    base = info_nce(q, c, pos, 10.0)
    near = q[0:1] + 0.01 * torch.randn(1, 4)  # a hard negative almost equal to query 0
    with_hard = info_nce(q, torch.cat([c, near]), torch.cat([pos, torch.zeros(2, 1, dtype=torch.bool)], 1), 10.0)
    assert with_hard > base
    # a second copy of a positive is not a negative of its query: same loss as with one copy
    one = info_nce(q[:1], c, torch.tensor([[True, False]]), 10.0)
    dup = info_nce(q[:1], torch.cat([c, c[0:1]]), torch.tensor([[True, False, True]]), 10.0)
    assert float(dup) == pytest.approx(float(one), rel=1e-5)


def test_symmetric_loss_uses_only_candidates_with_a_positive_as_reverse_queries():
    torch.manual_seed(3)
    q, c = torch.randn(3, 5), torch.randn(4, 5)
    pos = torch.zeros(3, 4, dtype=torch.bool)
    pos[0, 0] = pos[1, 1] = pos[2, 2] = True  # candidate 3 is a hard negative
    got = info_nce(q, c, pos, 10.0, symmetric=True)
    rev = hand_info_nce(c[:3], q, pos[:, :3].T.tolist(), 10.0)
    assert float(got) == pytest.approx((hand_info_nce(q, c, pos.tolist(), 10.0) + rev) / 2, rel=1e-5)


def test_query_without_positive_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        info_nce(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([[True, False], [False, False]]), 1.0)


def test_soft_targets_keep_the_other_positives_in_the_denominator():
    torch.manual_seed(4)
    q, c = torch.randn(4, 6), torch.randn(5, 6)
    pos = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    got = float(info_nce(q, c, pos, 7.0, soft_targets=True))
    assert got == pytest.approx(hand_info_nce(q, c, pos.tolist(), 7.0, soft=True), rel=1e-5)
    assert got > float(info_nce(q, c, pos, 7.0))  # the positives of query 0 now compete with each other
    sym = float(info_nce(q, c, pos, 7.0, symmetric=True, soft_targets=True))
    rev = hand_info_nce(c[:4], q, pos[:, :4].T.tolist(), 7.0, soft=True)  # candidate 4 is no one's positive
    assert sym == pytest.approx((got + rev) / 2, rel=1e-5)


def test_matches_the_losses_the_cached_trainers_wrote_by_hand():
    """The probe / global top called a symmetric loss on unit vectors with a capped learnable log scale; the text
    top wrote a symmetric soft-target cross-entropy with texts drawn twice as positives. Same numbers here."""
    torch.manual_seed(5)
    a, b = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    log_scale = torch.tensor(4.8)  # exp = 121.5: the cap applies
    logits = capped_scale(log_scale) * a @ b.T
    target = torch.arange(6)
    clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    eye = torch.eye(6, dtype=torch.bool)
    torch.testing.assert_close(info_nce(a, b, eye, capped_scale(log_scale), normalize=False, symmetric=True), clip)
    rows = torch.tensor([3, 1, 3, 0, 2, 1])  # one text drawn twice: both pairs are positives of each other
    same = rows[:, None] == rows[None, :]
    soft = same.float() / same.sum(1, keepdim=True)
    by_hand = (F.cross_entropy(logits, soft) + F.cross_entropy(logits.T, soft)) / 2
    got = info_nce(a, b, same, capped_scale(log_scale), normalize=False, symmetric=True, soft_targets=True)
    torch.testing.assert_close(got, by_hand)
    assert float(capped_scale(torch.tensor(1.0))) == pytest.approx(math.e)
