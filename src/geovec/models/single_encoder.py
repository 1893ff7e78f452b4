"""The compact single-encoder model: modality towers -> one interleaved token sequence -> one transformer ->
pooling -> projection head -> L2-normalised vector.

Sequence layout per item (``order`` is the order the item gave its modalities)::

    prefix  [instruction tokens]  <image tokens | region tokens | location tokens | text tokens ...>  suffix

Each token also gets a learned type embedding (special/text, instruction, image, region, location).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoRef, GeoVecInputError, Item, read_image
from geovec.models.backbones import build_backbone
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import load_trained, save_trained
from geovec.models.config import GeoVecConfig
from geovec.models.pooling import pool
from geovec.models.towers import LocationTower, Projector, RegionTokens, VisionTower

TYPE_TEXT, TYPE_INSTRUCTION, TYPE_IMAGE, TYPE_REGION, TYPE_LOCATION = range(5)


@dataclass
class PreparedItem:
    """CPU-side result of :meth:`SingleEncoderModel.prepare` for one item."""

    order: tuple[str, ...]
    text: str | None = None
    instruction: str | None = None
    pixels: torch.Tensor | None = None  # (3, H, W) normalised for the vision tower
    boxes: torch.Tensor | None = None  # (N, 4) normalised xyxy in [0, 1]
    lat: float | None = None
    lon: float | None = None
    georef: GeoRef | None = None
    features: torch.Tensor | None = None  # (C, h, w) cached vision feature map; skips the tower


def target_size(width: int, height: int, min_size: int, max_size: int, stride: int = 32) -> tuple[int, int]:
    """Resize rule (aspect kept): longer side clamped to [min_size, max_size], both sides multiples of stride."""
    long_side = max(width, height)
    scale = min(max(long_side, min_size), max_size) / long_side
    w = max(stride, int(round(width * scale / stride)) * stride)
    h = max(stride, int(round(height * scale / stride)) * stride)
    return w, h


class SingleEncoderModel(EmbeddingModel):
    """Backbone-agnostic single encoder; ``config.backbone`` picks the transformer from the registry."""

    def __init__(self, config: GeoVecConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, path=config.backbone_path, **config.extra.get("backbone", {}))
        d = self.backbone.hidden_size
        self.vision = VisionTower(config.vision)
        self.vision_proj = Projector(VisionTower.channels, d)
        self.regions = RegionTokens(VisionTower.channels, d, config.roi_bins, config.box_fourier_freqs)
        self.location = LocationTower(config.location)
        self.location_proj = Projector(LocationTower.out_dim, d, tokens=config.location_tokens)
        self.type_embed = nn.Embedding(5, d)
        nn.init.zeros_(self.type_embed.weight)  # text keeps exactly the pretrained encoder's behaviour at init
        self.head = nn.Linear(d, config.embed_dim)
        if config.embed_dim == d:
            with torch.no_grad():
                self.head.weight.copy_(torch.eye(d))
                self.head.bias.zero_()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
        self.apply_trainable(config.trainable)
        self.eval()

    # --- which parameters train ----------------------------------------------------------------------------
    def is_trainable_name(self, name: str) -> bool:
        return any(name == p or name.startswith(p) for p in self.config.trainable)

    def apply_trainable(self, prefixes: list[str]) -> None:
        self.config.trainable = list(prefixes)
        for name, p in self.named_parameters():
            p.requires_grad_(self.is_trainable_name(name))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if self.is_trainable_name(n)}

    # --- CPU-side preparation ---------------------------------------------------------------------------------
    def prepare(self, item: Item) -> PreparedItem:
        prepared = PreparedItem(order=item.order, text=item.text, instruction=item.instruction,
                                lat=item.lat, lon=item.lon)
        if item.image is not None:
            raster = read_image(item.image)
            prepared.georef = raster.georef
            w, h = target_size(raster.width, raster.height, self.config.image_min_size, self.config.image_max_size)
            pixels = raster.pixels
            if (w, h) != (raster.width, raster.height):
                pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.BICUBIC))
            prepared.pixels = VisionTower.normalize(pixels)
            if item.boxes:
                b = torch.tensor(item.boxes, dtype=torch.float32)
                for box in item.boxes:  # paths were checked at parse time; arrays/PIL may differ after decode
                    if box[2] > raster.width or box[3] > raster.height:
                        raise GeoVecInputError(f"box {list(box)} lies outside the {raster.width}x{raster.height} image")
                prepared.boxes = b / torch.tensor([raster.width, raster.height, raster.width, raster.height])
        return prepared

    # --- forward ---------------------------------------------------------------------------------------------
    def _tower(self, module: nn.Module, *args):
        if any(p.requires_grad for p in module.parameters()):
            return module(*args)
        with torch.no_grad():
            return module(*args)

    def vision_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Feature maps for a list of (3, H, W) images, batched by size."""
        out: list[torch.Tensor | None] = [None] * len(pixels)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(pixels):
            groups.setdefault(tuple(p.shape), []).append(i)
        dev = self.device
        for idx in groups.values():
            fmap = self._tower(self.vision, torch.stack([pixels[i] for i in idx]).to(dev))
            for j, i in enumerate(idx):
                out[i] = fmap[j]
        return out  # type: ignore[return-value]

    def _segments(self, prepared: Sequence[PreparedItem]) -> list[list[tuple[torch.Tensor, int]]]:
        bb, cfg, dev = self.backbone, self.config, self.device
        texts = [p.text for p in prepared if p.text is not None]
        instrs = [p.instruction for p in prepared if p.instruction is not None]
        text_ids = iter(bb.tokenize(texts, cfg.max_text_tokens) if texts else [])
        instr_ids = iter(bb.tokenize(instrs, cfg.max_instruction_tokens) if instrs else [])

        need_tower = [i for i, p in enumerate(prepared) if p.pixels is not None and p.features is None]
        computed = dict(zip(need_tower, self.vision_features([prepared[i].pixels for i in need_tower])))
        fmaps = {i: (p.features.to(dev) if p.features is not None else computed.get(i)) for i, p in enumerate(prepared)}
        img_idx = [i for i, f in fmaps.items() if f is not None]
        image_tokens: dict[int, torch.Tensor] = {}
        if img_idx:
            grid = cfg.image_grid
            pooled = torch.stack([F.adaptive_avg_pool2d(fmaps[i], grid) for i in img_idx])  # (B, C, g, g)
            toks = self.vision_proj(pooled.flatten(2).transpose(1, 2)).squeeze(2)  # (B, g*g, d)
            image_tokens = {i: toks[j] for j, i in enumerate(img_idx)}

        loc_idx = [i for i, p in enumerate(prepared) if p.lat is not None]
        loc_tokens: dict[int, torch.Tensor] = {}
        if loc_idx:
            lat = torch.tensor([prepared[i].lat for i in loc_idx], device=dev)
            lon = torch.tensor([prepared[i].lon for i in loc_idx], device=dev)
            z = self.location_proj(self._tower(self.location, lat, lon))  # (B, k, d)
            loc_tokens = {i: z[j] for j, i in enumerate(loc_idx)}

        def tokens(ids: list[int]) -> torch.Tensor:
            return bb.embed_tokens(torch.tensor(ids, dtype=torch.long, device=dev))

        seqs = []
        for i, p in enumerate(prepared):
            seg: list[tuple[torch.Tensor, int]] = []
            if bb.prefix_ids:
                seg.append((tokens(bb.prefix_ids), TYPE_TEXT))
            if p.instruction is not None:
                seg.append((tokens(next(instr_ids)), TYPE_INSTRUCTION))
            for m in p.order:
                if m == "image":
                    seg.append((image_tokens[i], TYPE_IMAGE))
                elif m == "box":
                    seg.append((self.regions(fmaps[i], p.boxes.to(dev)), TYPE_REGION))
                elif m == "location":
                    seg.append((loc_tokens[i], TYPE_LOCATION))
                elif m == "text":
                    seg.append((tokens(next(text_ids)), TYPE_TEXT))
            if bb.suffix_ids:
                seg.append((tokens(bb.suffix_ids), TYPE_TEXT))
            seqs.append(seg)
        return seqs

    def embed_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        return self.head(self.pool_prepared(prepared))

    def pool_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        """The pooled encoder states (B, hidden) before the projection head (training caches these for
        inputs whose encoder path is frozen)."""
        if not prepared:
            raise GeoVecInputError("no items to embed (empty batch)")
        bb, cfg, dev = self.backbone, self.config, self.device
        seqs = self._segments(prepared)
        lengths = [sum(t.shape[0] for t, _ in s) for s in seqs]
        limit = getattr(bb, "max_positions", None)
        for i, n in enumerate(lengths):
            if limit and n > limit:
                raise GeoVecInputError(f"sequence of {n} tokens exceeds the encoder's {limit} (too many boxes?)", i)
        T, B, d = max(lengths), len(seqs), bb.hidden_size
        embeds = torch.zeros(B, T, d, device=dev)
        types = torch.zeros(B, T, dtype=torch.long, device=dev)
        attn = torch.zeros(B, T, dtype=torch.long, device=dev)
        pool_mask = torch.zeros(B, T, device=dev)
        for b, seg in enumerate(seqs):
            start = T - lengths[b] if bb.padding_side == "left" else 0
            pos = start
            region_item = cfg.region_pooling == "regions" and any(t2 == TYPE_REGION for _, t2 in seg)
            for k, (t, typ) in enumerate(seg):
                n = t.shape[0]
                embeds[b, pos : pos + n] = t
                types[b, pos : pos + n] = typ
                # region_pooling "regions": an item with boxes stands for the marked region, so the mean runs
                # over its region tokens (which attend to the whole image) and its own text only, not over the
                # image tokens or the sequence's wrapper tokens ([CLS]/[SEP]) that summarise the whole scene
                wrapper = (k == 0 and bool(bb.prefix_ids)) or (k == len(seg) - 1 and bool(bb.suffix_ids))
                skip = typ == TYPE_INSTRUCTION and not cfg.pool_instruction
                skip |= region_item and (typ == TYPE_IMAGE or wrapper)
                if not skip:
                    pool_mask[b, pos : pos + n] = 1.0
                pos += n
            attn[b, start:pos] = 1
        hidden = bb(embeds + self.type_embed(types), attn)
        mode = cfg.pooling or bb.default_pooling
        # last-token / CLS pooling read the attended sequence; mean pooling skips the instruction
        return pool(hidden, pool_mask if mode == "mean" else attn, mode)

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` holding the trained parameters only (the frozen
        pretrained towers are rebuilt from their packages on load)."""
        return save_trained(self, directory, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "SingleEncoderModel":
        directory = Path(directory)
        model = cls(GeoVecConfig.from_json(directory / "config.json"))
        load_trained(model, directory)
        return model.eval()

    def parameter_counts(self) -> dict[str, int]:
        groups: dict[str, int] = {}
        for n, p in self.named_parameters():
            key = re.split(r"\.", n, maxsplit=1)[0]
            groups[key] = groups.get(key, 0) + p.numel()
        groups["trainable"] = sum(p.numel() for n, p in self.named_parameters() if self.is_trainable_name(n))
        groups["total"] = sum(p.numel() for p in self.parameters())
        return groups
