"""Vision towers: one small module each, found through a registry (as the encoder backbones are).

A vision tower turns prepared pixels into a feature map at a fixed stride. It owns what its input and output
are: ``normalize`` (uint8 pixels -> the tensor it expects), ``stride`` (how many pixels per feature cell, and
the multiple image sides are rounded to) and ``channels`` (the feature map's width, which sizes the projector
and the region tokens). ``config.vision`` names the tower; add one by writing a module with an
:class:`ImageTower` subclass and one line in :data:`_REGISTRY` (or :func:`register_vision_tower` from outside).
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
from torch import nn

from geovec.models.pixels import target_size  # noqa: F401  (the resize rule, imported from here)

# name -> "module:Class"; modules are imported on first use so optional weight packages stay optional. Each class
# is built as Class(name).
_REGISTRY: dict[str, str] = {
    "efficientnet-lite0": "geovec.models.vision.efficientnet_lite:EfficientNetLite",
    "efficientnet-lite2": "geovec.models.vision.efficientnet_lite:EfficientNetLite",
}


class ImageTower(nn.Module):
    """Interface of a vision tower (see the module docstring)."""

    channels: int  # feature-map width
    stride: int = 32  # pixels per feature cell

    @staticmethod
    def normalize(pixels_uint8: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, H, W) float, as the tower expects its input."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, channels, H / stride, W / stride)."""
        raise NotImplementedError


def run_by_size(pixels: list[torch.Tensor], run) -> list:
    """``run(batch)`` over (3, H, W) tower inputs grouped by size, one call per size (the same tensor object given
    twice, one decoded file under several items, runs once); ``run`` returns a (B, ...) tensor, or a tuple of them
    (each item then gets the tuple of its rows). Results in the order given."""
    out: list = [None] * len(pixels)
    groups: dict[tuple, dict[int, list[int]]] = {}
    for i, p in enumerate(pixels):
        groups.setdefault(tuple(p.shape), {}).setdefault(id(p), []).append(i)
    for same_size in groups.values():
        result = run(torch.stack([pixels[idx[0]] for idx in same_size.values()]))
        for j, idx in enumerate(same_size.values()):
            row = tuple(None if r is None else r[j] for r in result) if isinstance(result, tuple) else result[j]
            for i in idx:
                out[i] = row
    return out


def register_vision_tower(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name`` (for third-party towers)."""
    _REGISTRY[name] = target


def available_vision_towers() -> list[str]:
    return sorted(_REGISTRY)


def vision_tower_class(name: str) -> type[ImageTower]:
    """The class registered under ``name`` (its ``channels``, ``stride`` and ``normalize`` without building it)."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown vision tower {name!r} (available: {', '.join(available_vision_towers())})") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def build_vision_tower(name: str) -> ImageTower:
    return vision_tower_class(name)(name)
