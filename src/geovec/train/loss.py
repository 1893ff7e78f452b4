"""InfoNCE over query / candidate embeddings with in-batch negatives, explicit hard negatives and several
positives per query.

Shapes: ``q`` (B, D) query embeddings, ``c`` (N, D) candidate embeddings (every positive and hard negative
of the batch, duplicates merged), ``positive`` (B, N) bool, True where candidate j is a positive of query i.
Every other candidate is a negative of query i: the other queries' positives (in-batch negatives) and all
hard negatives. With several positives, each positive p of query i contributes its own term

    -log( exp(s_ip / t) / (exp(s_ip / t) + sum_{j negative for i} exp(s_ij / t)) )

(the other positives of i are left out of the denominator, so they are never pushed apart), averaged over
the positives of i, then over the queries. Scores are cosine similarities (inputs are L2-normalised here).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def info_nce(q: torch.Tensor, c: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor | float,
             normalize: bool = True) -> torch.Tensor:
    """Mean multi-positive InfoNCE of ``q`` against ``c``; ``logit_scale`` = 1 / temperature."""
    if positive.shape != (q.shape[0], c.shape[0]):
        raise ValueError(f"positive mask {tuple(positive.shape)} does not match ({q.shape[0]}, {c.shape[0]})")
    has_pos = positive.any(1)
    if not bool(has_pos.all()):
        raise ValueError("every query needs at least one positive candidate")
    if normalize:
        q, c = F.normalize(q, dim=-1), F.normalize(c, dim=-1)
    logits = (q @ c.T) * logit_scale  # (B, N)
    # log-sum-exp over the negatives of each query (positives masked out)
    neg_lse = torch.logsumexp(logits.masked_fill(positive, float("-inf")), dim=1, keepdim=True)  # (B, 1)
    # per positive: log(exp(s_p) + sum_neg exp(s_j)) - s_p
    per_pair = torch.logaddexp(logits, neg_lse) - logits  # (B, N), meaningful where positive
    per_query = (per_pair * positive).sum(1) / positive.sum(1)
    return per_query.mean()


def symmetric_info_nce(q: torch.Tensor, c: torch.Tensor, positive: torch.Tensor,
                       logit_scale: torch.Tensor | float, normalize: bool = True) -> torch.Tensor:
    """Average of query->candidate InfoNCE and candidate->query InfoNCE (CLIP-style); in the second
    direction only candidates that are someone's positive act as queries (hard negatives have none)."""
    forward = info_nce(q, c, positive, logit_scale, normalize)
    rows = positive.any(0)
    backward = info_nce(c[rows], q, positive[:, rows].T, logit_scale, normalize)
    return (forward + backward) / 2
