"""Backbone-agnostic pooling of token states into one vector per item."""

from __future__ import annotations

import torch
from torch.nn import functional as F

POOLING_MODES = ("mean", "cls", "last")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """hidden (B, T, D), mask (B, T) with 1 for tokens that count -> (B, D).

    ``mean``: masked average. ``cls``: the first attended token. ``last``: the last attended token, which
    is where decoder LLMs summarise (VLM2Vec's EOS pooling); works with left or right padding.
    """
    if mode == "mean":
        return masked_mean(hidden, mask)
    mask = mask.to(hidden.dtype)
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0).expand_as(mask)
    if mode == "cls":
        idx = torch.where(mask > 0, positions, hidden.shape[1]).min(1).values
    elif mode == "last":
        idx = torch.where(mask > 0, positions, -1).max(1).values
    else:
        raise ValueError(f"unknown pooling {mode!r}; choose one of {POOLING_MODES}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """hidden (B, T, D), mask (B, T) with 1 for tokens that count -> (B, D): the average over those tokens
    (sentence-transformers' mean pooling; a row without any counted token gives zeros)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def sentence_vectors(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unit sentence vectors: :func:`masked_mean` of the token states, L2-normalised (sentence-transformers)."""
    return F.normalize(masked_mean(hidden, mask), dim=-1)
