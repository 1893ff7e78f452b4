"""The global path: one embedding of an item from whole-scene tower features, its parts each a unit vector, summed.

* **image**: the tower's feature map of the item's global view (the image, or the union of its boxes cut out,
  resized to ``image_size`` px on its longer side), mean-pooled, through an MLP (:class:`ImageHead`);
* **text**: the text tower's sentence embedding (token states averaged over the mask, L2 norm), optionally through
  a fine-tuned copy of the tower's top layers (:class:`~geovec.models.text_top.TextTop`);
* **location**: a linear map of the GeoCLIP features.

It is the frozen-towers probe (:mod:`geovec.models.probe`: the global path alone) and the first half of the
dual-path model (:mod:`geovec.models.dual_path`). The towers are not its own: the model holding it passes them in
(:class:`Towers`), with the functions that run them, so the dual-path model's global path reads the encoder's
towers (and its exported graphs, and its feature map where the global view is the encoder's input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.models.checkpoint import copy_tensors
from geovec.models.pixels import resize_to
from geovec.models.text_top import TextTop, run_to_split, sentence_embeddings
from geovec.models.vision import ImageTower, run_by_size, target_size, vision_tower_class
from geovec.models.vision_top import VisionTop, run_from_split
from geovec.models.vision_top import run_to_split as run_vision_to_split

# the global path's settings and their defaults (the probe's config, the dual-path config's "global_path" entry)
DEFAULTS = {"hidden": 1024, "layer_norm": True, "image_size": 224, "max_text_tokens": 256,
            "vision_top_split": None, "text_top_split": None}
# its trained parts (parameter-name prefixes inside the part)
TRAINED_PARTS = ("image_head.", "location_map.", "vision_top.", "text_top.")


class ImageHead(nn.Sequential):
    """Pooled vision features -> the text tower's sentence space."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layer_norm: bool = True):
        layers: list[nn.Module] = [nn.LayerNorm(in_dim)] if layer_norm else []
        layers += [nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)]
        super().__init__(*layers)


def box_crop(pixels: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """The image cut to the union of the pixel xyxy boxes (at least 1 px each way)."""
    h, w = pixels.shape[:2]
    x1 = int(math.floor(min(b[0] for b in boxes)))
    y1 = int(math.floor(min(b[1] for b in boxes)))
    x2 = int(math.ceil(max(b[2] for b in boxes)))
    y2 = int(math.ceil(max(b[3] for b in boxes)))
    x1, y1 = max(0, min(x1, w - 1)), max(0, min(y1, h - 1))
    x2, y2 = max(x1 + 1, min(x2, w)), max(y1 + 1, min(y2, h))
    return pixels[y1:y2, x1:x2]


def preprocess_pixels(pixels: np.ndarray, image_size: int = 224,
                      tower: type[ImageTower] | ImageTower | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) input of ``tower`` (default EfficientNet-Lite0): longer side ``image_size``
    (aspect kept, multiples of the tower's stride, bicubic), the tower's own normalisation."""
    tower = tower if tower is not None else vision_tower_class("efficientnet-lite0")
    height, width = pixels.shape[:2]
    w, h = target_size(width, height, image_size, image_size, tower.stride)
    return tower.normalize(resize_to(pixels, w, h))


@dataclass(frozen=True)
class Towers:
    """The pretrained towers a global path reads, owned by the model holding it (shared, never copied), and how
    that model runs them (its feature provider, its exported graphs)."""

    vision: ImageTower
    text: Any  # a text backbone: ``tokenizer``, ``model`` (the BERT), ``hidden_size``
    vision_features: Callable[[list[torch.Tensor]], list[torch.Tensor]]  # tower inputs -> feature maps
    location_features: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # lat, lon (B,) -> (B, 512)
    text_states: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # token ids, mask -> token states
    # the text tower with the path's text top (ids, mask -> states); None: run it in torch here
    text_top_states: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


@dataclass
class GlobalInput:
    """What the global path reads of one item: its text, place and global view. An item with an image has its own
    view (``pixels``) or, where that view is the holder's tower input, the feature map computed for it (``fmap``)."""

    text: str | None = None
    lat: float | None = None
    lon: float | None = None
    pixels: torch.Tensor | None = None
    fmap: torch.Tensor | None = None


class GlobalPath(nn.Module):
    """The global path (see the module docstring); its trained parts are ``image_head``, ``location_map`` and the
    optional ``vision_top`` / ``text_top``."""

    def __init__(self, towers: Towers, hidden: int = 1024, layer_norm: bool = True, image_size: int = 224,
                 max_text_tokens: int = 256, vision_top_split: int | None = None, text_top_split: int | None = None):
        super().__init__()
        from geovec.models.towers import LocationTower

        self.towers = towers  # a plain attribute: the towers are registered by their owner
        self.image_size, self.max_text_tokens = int(image_size), int(max_text_tokens)
        self.embed_dim = int(towers.text.hidden_size)  # the sentence space every part maps into
        self.image_head = ImageHead(towers.vision.channels, int(hidden), self.embed_dim, bool(layer_norm))
        self.location_map = nn.Linear(LocationTower.out_dim, self.embed_dim)
        # optional fine-tuned copies of the towers' top layers, branching at block / layer `split`
        self.vision_top = VisionTop(towers.vision.net, int(vision_top_split)) if vision_top_split is not None else None
        self.text_top = TextTop(towers.text.model, int(text_top_split)) if text_top_split is not None else None

    @property
    def device(self) -> torch.device:
        return self.image_head[-1].weight.device

    def load_from(self, state: Mapping[str, torch.Tensor], required: Sequence[str] = ("image_head.", "location_map.")
                  ) -> None:
        """Copy the tensors of ``state`` that name this part's parameters (its own names, ``image_head.0.weight``;
        other entries are its holder's). Refuses a state lacking one of the ``required`` parts or a shape that
        does not fit."""
        own = dict(self.named_parameters())
        for part in required:
            need = sorted(n for n in own if n.startswith(part))
            if any(n not in state for n in need):
                raise ValueError(f"the global path's {part[:-1]} is missing or incomplete in the weights given")
        copy_tensors(own, state, "global path")

    # --- CPU side: the global view of an image -------------------------------------------------------------------
    def view(self, pixels: np.ndarray, boxes: Sequence[Sequence[float]] | None = None,
             shared: torch.Tensor | None = None) -> torch.Tensor | None:
        """The tower input of the global view of decoded (H, W, 3) ``pixels`` (cut to ``boxes``); None where the
        holder's own tower input ``shared`` of the whole image already is that view (one tower pass for both)."""
        if shared is not None and not boxes and max(shared.shape[1:]) == self.image_size:
            return None
        if boxes:
            pixels = box_crop(pixels, boxes)
        return preprocess_pixels(pixels, self.image_size, self.towers.vision)

    # --- the parts ----------------------------------------------------------------------------------------------
    def _run(self, module: nn.Module, *args):
        if any(p.requires_grad for p in module.parameters()):
            return module(*args)
        with torch.no_grad():
            return module(*args)

    def split_feature_maps(self, pixels: list[torch.Tensor], frozen: bool = True) -> list[tuple]:
        """Per tower input: (the frozen tower's feature map, or None without ``frozen``; the vision top's feature
        map), from one shared run of the tower up to the split block, batched by size."""
        net, split = self.towers.vision.net, self.vision_top.split

        def run(batch: torch.Tensor):
            with torch.no_grad():
                act = run_vision_to_split(net, batch.to(self.device), split)
                plain = run_from_split(net, act, split) if frozen else None
            return plain, self._run(self.vision_top, act)

        return run_by_size(pixels, run)

    def feature_maps(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Feature maps of global views: through the vision top where the path has one, else the holder's tower."""
        if self.vision_top is not None:
            return [m[1] for m in self.split_feature_maps(pixels, frozen=False)]
        return self.towers.vision_features(pixels)

    def image_embeddings(self, pooled: torch.Tensor) -> torch.Tensor:
        """Mean-pooled feature maps (B, C) -> unnormalised (B, d); gradients flow (training calls this)."""
        return self.image_head(pooled.to(self.device, torch.float32))

    def image_part(self, pooled: torch.Tensor) -> torch.Tensor:
        """Mean-pooled feature maps (B, C) -> the image part of the embedding: unit vectors (B, d)."""
        return F.normalize(self.image_embeddings(pooled), dim=-1)

    def _text_top_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text_top(run_to_split(self.towers.text.model, ids, mask, self.text_top.split), mask)

    def sentence_embeddings(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(N, d) unit sentence embeddings: the text tower's, through the text top where the path has one."""
        return sentence_embeddings(self.towers.text.tokenizer, self.text_states_fn(), texts, self.max_text_tokens,
                                   batch_size, self.device)

    def text_states_fn(self):
        """What the sentence embedding reads: token ids, mask -> token states (through the text top where the path
        has one)."""
        if self.text_top is not None:
            return self.towers.text_top_states or self._text_top_states
        return self.towers.text_states

    def location_embeddings(self, features: torch.Tensor) -> torch.Tensor:
        """GeoCLIP features (B, 512) -> unnormalised (B, d)."""
        return self.location_map(features.to(self.device, torch.float32))

    # --- the embedding ------------------------------------------------------------------------------------------
    def embed_parts(self, items: Sequence[GlobalInput]) -> torch.Tensor:
        """(B, d): the sum of each item's unit image, text and location embeddings."""
        dev = self.device
        out = torch.zeros(len(items), self.embed_dim, device=dev)
        img = [i for i, it in enumerate(items) if it.pixels is not None or it.fmap is not None]
        if img:
            own = [i for i in img if items[i].pixels is not None]
            maps = dict(zip(own, self.feature_maps([items[i].pixels for i in own]))) if own else {}
            pooled = torch.stack([(maps[i] if i in maps else items[i].fmap).float().mean(dim=(1, 2)) for i in img])
            out[img] += self.image_part(pooled)
        txt = [i for i, it in enumerate(items) if it.text is not None]
        if txt:
            with torch.no_grad():
                out[txt] += self.sentence_embeddings([items[i].text for i in txt]).to(dev)
        loc = [i for i, it in enumerate(items) if it.lat is not None]
        if loc:
            lat = torch.tensor([items[i].lat for i in loc], device=dev)
            lon = torch.tensor([items[i].lon for i in loc], device=dev)
            out[loc] += F.normalize(self.location_embeddings(self.towers.location_features(lat, lon).float()), dim=-1)
        return out

    def embed(self, items: Sequence[GlobalInput]) -> torch.Tensor:
        """(B, d) unit vectors: :meth:`embed_parts`, L2-normalised."""
        return F.normalize(self.embed_parts(items), dim=-1)
