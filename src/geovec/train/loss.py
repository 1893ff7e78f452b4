"""InfoNCE over query / candidate embeddings with in-batch negatives, explicit hard negatives and several
positives per query: the one contrastive loss of every trainer in :mod:`geovec.train`.

Shapes: ``q`` (B, D) query embeddings, ``c`` (N, D) candidate embeddings (every positive and hard negative
of the batch, duplicates merged), ``positive`` (B, N) bool, True where candidate j is a positive of query i.
Every other candidate is a negative of query i: the other queries' positives (in-batch negatives) and all
hard negatives. With several positives, each positive p of query i contributes its own term

    -log( exp(s_ip / t) / (exp(s_ip / t) + sum_{j negative for i} exp(s_ij / t)) )

(the other positives of i are left out of the denominator, so they are never pushed apart), averaged over
the positives of i, then over the queries. With ``soft_targets`` the other positives stay in the denominator
instead: cross-entropy against a target spread evenly over the positives of i (SupCon's L_out), which is what
the text top trains with. Scores are cosine similarities when ``normalize`` (the default).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

MAX_LOGIT_SCALE = 100.0  # a learnable temperature never goes below 0.01 (CLIP's cap)


def capped_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """The logit scale (1 / temperature) of a learnable log scale, capped at :data:`MAX_LOGIT_SCALE`."""
    return log_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def info_nce(q: torch.Tensor, c: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor | float,
             normalize: bool = True, symmetric: bool = False, soft_targets: bool = False) -> torch.Tensor:
    """Mean multi-positive InfoNCE of ``q`` against ``c``; ``logit_scale`` = 1 / temperature.

    ``symmetric``: the average of query->candidate and candidate->query (CLIP-style); in the second direction
    only candidates that are someone's positive act as queries (hard negatives have none)."""
    if positive.shape != (q.shape[0], c.shape[0]):
        raise ValueError(f"positive mask {tuple(positive.shape)} does not match ({q.shape[0]}, {c.shape[0]})")
    if not bool(positive.any(1).all()):
        raise ValueError("every query needs at least one positive candidate")
    loss = _one_way(q, c, positive, logit_scale, normalize, soft_targets)
    if not symmetric:
        return loss
    rows = positive.any(0)
    return (loss + _one_way(c[rows], q, positive[:, rows].T, logit_scale, normalize, soft_targets)) / 2


def _one_way(q: torch.Tensor, c: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor | float,
             normalize: bool, soft_targets: bool) -> torch.Tensor:
    if normalize:
        q, c = F.normalize(q, dim=-1), F.normalize(c, dim=-1)
    logits = (q @ c.T) * logit_scale  # (B, N)
    if soft_targets:
        return F.cross_entropy(logits, positive.float() / positive.sum(1, keepdim=True))
    # log-sum-exp over the negatives of each query (positives masked out)
    neg_lse = torch.logsumexp(logits.masked_fill(positive, float("-inf")), dim=1, keepdim=True)  # (B, 1)
    # per positive: log(exp(s_p) + sum_neg exp(s_j)) - s_p
    per_pair = torch.logaddexp(logits, neg_lse) - logits  # (B, N), meaningful where positive
    per_query = (per_pair * positive).sum(1) / positive.sum(1)
    return per_query.mean()
