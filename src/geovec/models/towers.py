"""Modality towers: pretrained feature extractors (frozen by default) and the small trained parts that turn
their outputs into encoder tokens. Vision towers have their own registry (:mod:`geovec.models.vision`)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class quiet_transformers:
    """Silence transformers' info/warning chatter and loading bars while pretrained parts load."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self._level)
        hf_logging.enable_progress_bar()
        return False


class LocationTower(nn.Module):
    """GeoCLIP location encoder (:mod:`geovec.models.location_encoder`): (lat, lon) in WGS84 degrees -> (B, 512).

    GeoCLIP takes (lat, lon) in that order; callers pass named fields and this class builds the pair.
    """

    out_dim = 512

    def __init__(self, name: str = "geoclip"):
        super().__init__()
        if name != "geoclip":
            raise ValueError(f"unknown location tower {name!r} (available: geoclip)")
        from geovec.models.location_encoder import GeoCLIPLocationEncoder

        self.encoder = GeoCLIPLocationEncoder()

    def forward(self, lat: torch.Tensor, lon: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.stack([lat, lon], dim=-1).float())


def roi_align(fmap: torch.Tensor, boxes: torch.Tensor, bins: int = 2, samples: int = 2) -> torch.Tensor:
    """RoIAlign (bilinear, average of ``samples x samples`` points per bin) without torchvision.

    fmap (C, H, W) of one image; boxes (N, 4) normalised xyxy in [0, 1] of that image -> (N, C, bins, bins).
    """
    owner = torch.zeros(boxes.shape[0], dtype=torch.long, device=boxes.device)
    return roi_align_batched(fmap.unsqueeze(0), owner, boxes, bins, samples)


def roi_align_batched(fmaps: torch.Tensor, owner: torch.Tensor, boxes: torch.Tensor, bins: int = 2,
                      samples: int = 2) -> torch.Tensor:
    """:func:`roi_align` for boxes on several same-size feature maps at once: fmaps (G, C, H, W), owner (N,)
    the index of each box's map, boxes (N, 4) normalised xyxy -> (N, C, bins, bins)."""
    n = boxes.shape[0]
    steps = (torch.arange(bins * samples, device=fmaps.device, dtype=fmaps.dtype) + 0.5) / (bins * samples)
    xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps  # (N, S)
    ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps
    grid = torch.stack(
        [xs.unsqueeze(1).expand(n, ys.shape[1], xs.shape[1]), ys.unsqueeze(2).expand(n, ys.shape[1], xs.shape[1])],
        dim=-1,
    )
    source = fmaps.expand(n, -1, -1, -1) if fmaps.shape[0] == 1 else fmaps.index_select(0, owner)
    sampled = F.grid_sample(source, grid * 2 - 1, mode="bilinear", align_corners=False)
    return F.avg_pool2d(sampled, samples)


def fourier_box(boxes: torch.Tensor, freqs: int) -> torch.Tensor:
    """Normalised xyxy boxes (N, 4) -> sin/cos features of (x1, y1, x2, y2, cx, cy, w, h): (N, 16 * freqs)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    geo = torch.stack([x1, y1, x2, y2, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)
    scales = (2.0 ** torch.arange(freqs, device=boxes.device, dtype=boxes.dtype)) * math.pi
    angles = geo.unsqueeze(-1) * scales  # (N, 8, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


class RegionTokens(nn.Module):
    """One token per box: RoIAlign features from the image's feature map plus a Fourier encoding of the
    normalised box, so two boxes on one image embed differently even where the pixels look alike."""

    def __init__(self, channels: int, hidden: int, bins: int = 2, freqs: int = 8):
        super().__init__()
        self.bins, self.freqs = bins, freqs
        self.feature_proj = nn.Sequential(nn.Linear(channels * bins * bins, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.box_proj = nn.Sequential(nn.Linear(16 * freqs, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, fmap: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """fmap (C, H, W), boxes (N, 4) normalised xyxy -> (N, hidden)."""
        feats = roi_align(fmap, boxes, self.bins).flatten(1)
        return self.feature_proj(feats) + self.box_proj(fourier_box(boxes, self.freqs))

    def batched(self, fmaps: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        """Region tokens of several images in one pass: fmaps[i] (C, H, W) with boxes[i] (N_i, 4) ->
        (sum N_i, hidden), image by image in the given order (RoIAlign runs once per feature-map size)."""
        feats: list[torch.Tensor | None] = [None] * len(fmaps)
        groups: dict[tuple, list[int]] = {}
        for i, f in enumerate(fmaps):
            groups.setdefault(tuple(f.shape), []).append(i)
        for idx in groups.values():
            counts = torch.tensor([boxes[i].shape[0] for i in idx])
            owner = torch.repeat_interleave(torch.arange(len(idx)), counts).to(fmaps[idx[0]].device)
            stacked = fmaps[idx[0]].unsqueeze(0) if len(idx) == 1 else torch.stack([fmaps[i] for i in idx])
            pooled = roi_align_batched(stacked, owner, torch.cat([boxes[i] for i in idx]), self.bins).flatten(1)
            for i, part in zip(idx, pooled.split(counts.tolist())):
                feats[i] = part
        all_boxes = torch.cat(boxes)
        return self.feature_proj(torch.cat(feats)) + self.box_proj(fourier_box(all_boxes, self.freqs))  # type: ignore[arg-type]


class Projector(nn.Sequential):
    """Two-layer MLP from a tower's width into the encoder's width (LLaVA-style), producing ``tokens`` tokens."""

    def __init__(self, in_dim: int, hidden: int, tokens: int = 1):
        super().__init__(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden * tokens))
        self.tokens, self.hidden = tokens, hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).view(*x.shape[:-1], self.tokens, self.hidden)
