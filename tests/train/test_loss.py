import math

import pytest
import torch
from torch.nn import functional as F

from geovec.train.loss import info_nce, symmetric_info_nce


def hand_info_nce(q, c, positive, scale):
    """Literal per-pair formula from the module docstring, with Python loops."""
    q, c = F.normalize(q, dim=-1), F.normalize(c, dim=-1)
    total = 0.0
    for i in range(q.shape[0]):
        s = [scale * float(q[i] @ c[j]) for j in range(c.shape[0])]
        negs = [math.exp(s[j]) for j in range(c.shape[0]) if not positive[i][j]]
        terms = [-math.log(math.exp(s[p]) / (math.exp(s[p]) + sum(negs))) for p in range(c.shape[0]) if positive[i][p]]
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
    got = symmetric_info_nce(q, c, pos, 10.0)
    rev = hand_info_nce(c[:3], q, pos[:, :3].T.tolist(), 10.0)
    assert float(got) == pytest.approx((hand_info_nce(q, c, pos.tolist(), 10.0) + rev) / 2, rel=1e-5)


def test_query_without_positive_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        info_nce(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([[True, False], [False, False]]), 1.0)
