"""Backbone-agnostic pooling of token states into one vector per item."""

from __future__ import annotations

import torch

POOLING_MODES = ("mean", "cls", "last")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """hidden (B, T, D), mask (B, T) with 1 for tokens that count -> (B, D).

    ``mean``: masked average. ``cls``: the first attended token. ``last``: the last attended token, which
    is where decoder LLMs summarise (VLM2Vec's EOS pooling); works with left or right padding.
    """
    mask = mask.to(hidden.dtype)
    if mode == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0).expand_as(mask)
    if mode == "cls":
        idx = torch.where(mask > 0, positions, hidden.shape[1]).min(1).values
    elif mode == "last":
        idx = torch.where(mask > 0, positions, -1).max(1).values
    else:
        raise ValueError(f"unknown pooling {mode!r}; choose one of {POOLING_MODES}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
