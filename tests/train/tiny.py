"""A tiny text-only embedding model with the encode contract, for fast trainer tests (no pretrained weights)."""

import hashlib
import math

import torch
from torch import nn

from geovec.models.base import EmbeddingModel
from geovec.models.config import GeoVecConfig


class TinyTextModel(EmbeddingModel):
    """Hashed character trigrams -> EmbeddingBag -> MLP head. Trainable prefixes as in the real model."""

    def __init__(self, buckets: int = 512, dim: int = 16):
        super().__init__()
        self.config = GeoVecConfig(name="tiny", embed_dim=dim, trainable=["bag.", "head.", "logit_scale"])
        self.buckets = buckets
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(buckets, 32, mode="mean")
        self.head = nn.Sequential(nn.Linear(32, 32), nn.Dropout(0.1), nn.Linear(32, dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    def is_trainable_name(self, name):
        return any(name.startswith(p) for p in self.config.trainable)

    def apply_trainable(self, prefixes):
        self.config.trainable = list(prefixes)
        for n, p in self.named_parameters():
            p.requires_grad_(self.is_trainable_name(n))

    def prepare(self, item):
        text = item.text or ""
        ids = [int(hashlib.md5(text[i : i + 3].encode()).hexdigest(), 16) % self.buckets
               for i in range(max(1, len(text) - 2))]
        return torch.tensor(ids)

    def embed_prepared(self, prepared):
        offsets = torch.tensor([0] + [len(p) for p in prepared[:-1]]).cumsum(0)
        return self.head(self.bag(torch.cat(list(prepared)), offsets))

    def save_pretrained(self, directory, dtype=torch.float32):
        from pathlib import Path

        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), Path(directory) / "tiny.pt")
        return Path(directory)
