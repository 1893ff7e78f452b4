"""Data-driven initialisation of the projection head: standardise the pooled encoder states.

A decoder LLM's last-token states are dominated by a few huge, input-independent dimensions (a common
offset shared by every sequence): untrained, every caption sits at cosine ~0.99 to every other, which
leaves a contrastive loss almost no signal and lets a short run collapse to a constant. Initialising the
head as ``(h - mean) / std`` over a calibration sample (whitening, as in Su et al. 2021, "Whitening sentence
representations") spreads the items apart before training starts; training then adapts the head freely.
"""

from __future__ import annotations

from typing import Sequence

import torch


@torch.no_grad()
def standardize_head(model, prepared: Sequence, floor_ratio: float = 0.1) -> dict[str, float]:
    """Set ``model.head`` (Linear, in = out = pooled width) to per-dimension standardisation of the pooled
    states of ``prepared`` (outputs of ``model.prepare``; use a mix of the modalities to be embedded).
    Standard deviations are floored at ``floor_ratio`` x their median so near-constant dimensions are not
    blown up. Returns before/after mean pairwise cosine of the sample (a spread check)."""
    head = model.head
    if head.in_features != head.out_features:
        raise ValueError("standardize_head needs a square head (embed_dim == the encoder's width)")
    was = model.training
    model.eval()
    try:
        pooled = model.pool_prepared(prepared) if hasattr(model, "pool_prepared") else _pooled(model, prepared)
    finally:
        model.train(was)
    pooled = pooled.float()
    mean = pooled.mean(0)
    std = pooled.std(0)
    std = std.clamp_min(float(std.median()) * floor_ratio)

    def mean_cos(x):
        x = torch.nn.functional.normalize(x, dim=-1)
        s = x @ x.T
        n = s.shape[0]
        return float((s.sum() - n) / (n * (n - 1)))

    before = mean_cos(head(pooled.to(head.weight.dtype)).float())
    head.weight.copy_(torch.diag(1.0 / std).to(head.weight.dtype))
    head.bias.copy_((-mean / std).to(head.bias.dtype))
    after = mean_cos(head(pooled.to(head.weight.dtype)).float())
    return {"mean_cosine_before": before, "mean_cosine_after": after}


def _pooled(model, prepared):
    """Pooled states before the head, by running the model with the head temporarily replaced."""
    head = model.head
    model.head = torch.nn.Identity()
    try:
        return model.embed_prepared(prepared)
    finally:
        model.head = head
