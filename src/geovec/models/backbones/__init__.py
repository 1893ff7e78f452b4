"""Encoder backbones: one small adapter module each, found through a registry (no if/elif ladder).

A backbone is the single transformer that reads the interleaved token sequence. It says how to tokenize
text, how to embed token ids, which tokens wrap a sequence, which side pads, and how it pools by default.
Add one by writing a module with a :class:`Backbone` subclass and registering it under a name.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

# name -> "module:Class"; modules are imported on first use so optional dependencies stay optional
_REGISTRY: dict[str, str] = {
    "minilm": "geovec.models.backbones.minilm:MiniLMBackbone",
    "smol": "geovec.models.backbones.smol:SmolBackbone",
}


class Backbone(nn.Module):
    """Interface of an encoder backbone (see the module docstring)."""

    hidden_size: int
    padding_side: str = "right"
    default_pooling: str = "mean"
    # token ids placed before / after every sequence (e.g. [CLS] ... [SEP] for BERT, nothing + EOS for LLMs)
    prefix_ids: list[int] = []
    suffix_ids: list[int] = []
    pad_id: int = 0
    # module-name suffixes LoRA adapts by default (geovec.models.lora): the attention projections
    lora_targets: tuple[str, ...] = ()

    def tokenize(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        raise NotImplementedError

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def register_backbone(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name`` (for third-party backbones)."""
    _REGISTRY[name] = target


def available_backbones() -> list[str]:
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs) -> Backbone:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; available: {available_backbones()}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
