"""The compact single-encoder model: modality towers -> one interleaved token sequence -> one transformer ->
pooling -> projection head -> L2-normalised vector.

Sequence layout per item (``order`` is the order the item gave its modalities)::

    prefix  [instruction tokens]  <image tokens | region tokens | location tokens | text tokens ...>  suffix

Each token also gets a learned type embedding (special/text, instruction, image, region, location).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoRef, GeoVecInputError, Item, read_image
from geovec.inputs.policy import read_policy
from geovec.models import lora
from geovec.models.backbones import build_backbone
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import load_trained, save_trained
from geovec.models.config import GeoVecConfig
from geovec.models.pooling import pool
from geovec.models.stages import Stage, StagedModel
from geovec.models.towers import LocationTower, Projector, RegionTokens
from geovec.models.vision import build_vision_tower

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
    global_pixels: torch.Tensor | None = None  # dual-path: the global path's own view (a box crop, another size)


def target_size(width: int, height: int, min_size: int, max_size: int, stride: int = 32) -> tuple[int, int]:
    """Resize rule (aspect kept): longer side clamped to [min_size, max_size], both sides multiples of stride."""
    long_side = max(width, height)
    scale = min(max(long_side, min_size), max_size) / long_side
    w = max(stride, int(round(width * scale / stride)) * stride)
    h = max(stride, int(round(height * scale / stride)) * stride)
    return w, h


class SingleEncoderModel(StagedModel, EmbeddingModel):
    """Backbone-agnostic single encoder; ``config.backbone`` picks the transformer from the registry."""

    def __init__(self, config: GeoVecConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, path=config.backbone_path, **config.extra.get("backbone", {}))
        d = self.backbone.hidden_size
        self.vision = build_vision_tower(config.vision)  # its channels, stride and input normalisation are its own
        self.vision_proj = Projector(self.vision.channels, d)
        self.regions = RegionTokens(self.vision.channels, d, config.roi_bins, config.box_fourier_freqs)
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
        self._decoded: OrderedDict = OrderedDict()  # small LRU of decoded image files (path, mtime, size)
        self._decoded_lock = threading.Lock()
        self._decoding: dict[tuple, threading.Lock] = {}  # files being decoded now
        self.eval()

    def __getstate__(self):  # copies and pickles drop the backend (its sessions), locks and decode cache
        state = dict(self.__dict__)
        state.update(runner=None, _stages=None, _decoded=OrderedDict(), _decoding={}, _decoded_lock=None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._decoded_lock = threading.Lock()

    # --- the exportable steps (geovec.models.stages; a runtime may run them as graphs) --------------------------
    def torch_stages(self) -> dict[str, Stage]:
        # each step reads its modules when called: head_init and LoRA replace modules after the slots are filled
        d = self.backbone.hidden_size
        mask = torch.ones(2, 12, dtype=torch.long)
        mask[1, 7:] = 0

        def encoder(embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.backbone(embeds, attention_mask)

        return {
            "vision": Stage(lambda pixels: self._tower(self.vision, pixels.to(self.device)), (self.vision,),
                            self.vision, lambda: (torch.zeros(2, 3, 224, 224),)),
            "location": Stage(lambda lat, lon: self._tower(self.location, lat, lon), (self.location,), self.location,
                              lambda: (torch.tensor([52.1, -33.9]), torch.tensor([5.2, 151.2]))),
            "encoder": Stage(encoder, (self.backbone,), self.backbone, lambda: (torch.randn(2, 12, d) * 0.05, mask)),
            # text-only batches: the same encoder in torch (a runtime may run another graph, e.g. an int8 one)
            "encoder_text": Stage(encoder, (self.backbone,)),
            "head": Stage(lambda pooled: self.head(pooled), (self.head,), self.head, lambda: (torch.zeros(2, d),)),
        }

    # --- extension points (see geovec.models.base) ---------------------------------------------------------------
    def frozen_modules(self) -> list[nn.Module]:
        return [self.vision, self.location]

    supports_image_features = True

    @property
    def image_tower_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.vision.parameters())

    def image_features_signature(self) -> str:
        cfg = self.config
        return f"{cfg.vision}-{cfg.image_min_size}-{cfg.image_max_size}"

    def prepare_with_features(self, item: Item, features: torch.Tensor, size: tuple[int, int]) -> PreparedItem:
        prepared = PreparedItem(order=item.order, text=item.text, instruction=item.instruction, lat=item.lat,
                                lon=item.lon, features=features)
        if item.boxes:
            w, h = size
            prepared.boxes = torch.tensor(item.boxes, dtype=torch.float32) / torch.tensor([w, h, w, h],
                                                                                         dtype=torch.float32)
        return prepared

    @property
    def text_states_cacheable(self) -> bool:
        """A text-only item's pooled state is a constant while neither the encoder nor the type embeddings train:
        only the head then needs a graph."""
        return not any(p.requires_grad for n, p in self.named_parameters() if n.startswith(("backbone.", "type_embed.")))

    @property
    def text_states_shareable(self) -> bool:
        """Cacheable text states that are the pretrained encoder's own (type embeddings still zero): one file of
        them serves every model with this backbone."""
        return self.text_states_cacheable and not bool(self.type_embed.weight.abs().sum())

    # --- CPU-side preparation ---------------------------------------------------------------------------------
    DECODE_CACHE_ITEMS = 16

    def _decode(self, source) -> tuple[torch.Tensor, GeoRef | None, int, int, np.ndarray]:
        """(normalised pixels, georef, width, height, decoded uint8 pixels) of an image; files are decoded
        once and kept in a small LRU keyed by (path, mtime, size, read policy), so several boxes on one file (or a second
        view of it, like the dual-path model's crop) cost one decode."""
        key = None
        if isinstance(source, (str, os.PathLike)):
            try:
                st = os.stat(source)
                # the read policy is part of the key: a file decoded under looser limits is read again
                key = (os.path.abspath(os.fspath(source)), st.st_mtime_ns, st.st_size, read_policy())
            except OSError:
                key = None  # read_image reports the problem
            if key is not None:
                with self._decoded_lock:
                    hit = self._decoded.get(key)
                    if hit is not None:
                        self._decoded.move_to_end(key)
                        return hit
                    key_lock = self._decoding.setdefault(key, threading.Lock())
                with key_lock:  # a second item naming the same file waits for the first decode
                    with self._decoded_lock:
                        hit = self._decoded.get(key)
                    if hit is None:
                        hit = self._decode_now(source, key)
                with self._decoded_lock:
                    self._decoding.pop(key, None)
                return hit
        return self._decode_now(source, None)

    def decoded_pixels(self, source) -> np.ndarray:
        """The (H, W, 3) uint8 pixels of an image as decoded (shared with :meth:`prepare`'s decode)."""
        return self._decode(source)[4]

    def _decode_now(self, source, key) -> tuple[torch.Tensor, GeoRef | None, int, int, np.ndarray]:
        raster = read_image(source)
        w, h = target_size(raster.width, raster.height, self.config.image_min_size, self.config.image_max_size,
                           self.vision.stride)
        pixels = raster.pixels
        if (w, h) != (raster.width, raster.height):
            pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.BICUBIC))
        out = (self.vision.normalize(pixels), raster.georef, raster.width, raster.height, raster.pixels)
        if key is not None:
            with self._decoded_lock:
                self._decoded[key] = out
                while len(self._decoded) > self.DECODE_CACHE_ITEMS:
                    self._decoded.popitem(last=False)
        return out

    def prepare(self, item: Item) -> PreparedItem:
        prepared = PreparedItem(order=item.order, text=item.text, instruction=item.instruction,
                                lat=item.lat, lon=item.lon)
        if item.image is not None:
            prepared.pixels, prepared.georef, width, height, _ = self._decode(item.image)
            if item.boxes:
                b = torch.tensor(item.boxes, dtype=torch.float32)
                # paths were checked at parse time; arrays/PIL may differ after decode
                if bool((b[:, 2] > width).any() or (b[:, 3] > height).any()):
                    bad = next(box for box in item.boxes if box[2] > width or box[3] > height)
                    raise GeoVecInputError(f"box {list(bad)} lies outside the {width}x{height} image")
                prepared.boxes = b / torch.tensor([width, height, width, height], dtype=torch.float32)
        return prepared

    def batch_key(self, prepared: PreparedItem) -> tuple:
        """Batches are formed from items with equal keys next to each other: same image size first (one
        tower call per batch), then similar text length (little padding)."""
        src = prepared.pixels if prepared.pixels is not None else prepared.features
        shape = tuple(src.shape) if src is not None else ()
        return (src is None, shape, len(prepared.text or ""))

    # --- forward ---------------------------------------------------------------------------------------------
    def _tower(self, module: nn.Module, *args):
        if any(p.requires_grad for p in module.parameters()):
            return module(*args)
        with torch.no_grad():
            return module(*args)

    def image_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Feature maps for a list of (3, H, W) images, batched by size; the same tensor object given twice
        (one decoded file, several items) runs through the tower once."""
        out: list[torch.Tensor | None] = [None] * len(pixels)
        groups: dict[tuple, dict[int, list[int]]] = {}
        for i, p in enumerate(pixels):
            groups.setdefault(tuple(p.shape), {}).setdefault(id(p), []).append(i)
        for same_size in groups.values():
            firsts = [idx[0] for idx in same_size.values()]
            fmap = self.stages["vision"](torch.stack([pixels[i] for i in firsts]))
            for j, idx in enumerate(same_size.values()):
                for i in idx:
                    out[i] = fmap[j]
        return out  # type: ignore[return-value]

    def location_features(self, lat: torch.Tensor, lon: torch.Tensor) -> torch.Tensor:
        return self.stages["location"](lat, lon)

    def encode_sequence(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                        text_only: bool = False) -> torch.Tensor:
        """The backbone on summed token + type embeddings (B, T, d) -> hidden states (B, T, d). ``text_only``: the
        batch has no image, region or location tokens (a backend may then run its text-only encoder graph, e.g.
        the int8 one of :mod:`geovec.runtime.quantize`)."""
        return self.stages["encoder_text" if text_only else "encoder"](inputs_embeds, attention_mask)

    def sentence_embeddings(self, texts: Sequence[str], max_tokens: int = 256, batch_size: int = 64,
                            sequence=None) -> torch.Tensor:
        """(N, d) unit sentence embeddings of the backbone read on its own, as sentence-transformers computes
        them (tokenizer with its special tokens, token states mean-pooled over the mask, L2 norm), through
        :meth:`encode_sequence` (or ``sequence(inputs_embeds, mask)``), so an attached backend runs it. Same
        numbers as :func:`geovec.models.probe.sentence_embeddings` on the backbone's model (the backbone adds its
        own position and token-type embeddings to input embeddings exactly as to token ids)."""
        sequence = sequence or (lambda embeds, mask: self.encode_sequence(embeds, mask, text_only=True))
        bb, dev = self.backbone, self.device
        out = torch.empty(len(texts), bb.hidden_size)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = bb.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                               return_tensors="pt")
            mask = enc["attention_mask"].to(dev)
            hidden = sequence(bb.embed_tokens(enc["input_ids"].to(dev)), mask)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            out[idx] = F.normalize(pooled, dim=-1).float().cpu()
        return out

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """The projection head (B, hidden) -> (B, embed_dim)."""
        return self.stages["head"](pooled)

    def _assemble(self, prepared: Sequence[PreparedItem]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch as encoder input: (token embeddings (B, T, d), types (B, T), attention mask (B, T),
        pooling mask (B, T)). Every source (token ids, image, region and location tokens) is computed in
        one batched call; the per-item loop only lays out integer positions."""
        bb, cfg, dev = self.backbone, self.config, self.device
        # tokenisation: each distinct string once per batch (a task's instruction repeats on every item)
        texts = sorted({p.text for p in prepared if p.text is not None})
        instrs = sorted({p.instruction for p in prepared if p.instruction is not None})
        text_ids = dict(zip(texts, bb.tokenize(texts, cfg.max_text_tokens))) if texts else {}
        instr_ids = dict(zip(instrs, bb.tokenize(instrs, cfg.max_instruction_tokens))) if instrs else {}

        need_tower = [i for i, p in enumerate(prepared) if p.pixels is not None and p.features is None]
        computed = dict(zip(need_tower, self.vision_features([prepared[i].pixels for i in need_tower])))
        fmaps = {i: (p.features.to(dev) if p.features is not None else computed.get(i)) for i, p in enumerate(prepared)}
        img_idx = [i for i, p in enumerate(prepared) if fmaps[i] is not None and "image" in p.order]
        d, grid = bb.hidden_size, cfg.image_grid
        image_rows = torch.zeros(0, d, device=dev)
        img_slot: dict[int, int] = {}
        if img_idx:
            by_shape: dict[tuple, list[int]] = {}
            for i in img_idx:
                by_shape.setdefault(tuple(fmaps[i].shape), []).append(i)
            pooled_parts, order_parts = [], []
            for idx in by_shape.values():
                pooled_parts.append(F.adaptive_avg_pool2d(torch.stack([fmaps[i] for i in idx]), grid))
                order_parts.extend(idx)
            pooled = torch.cat(pooled_parts)  # (n_img, C, g, g)
            toks = self.vision_proj(pooled.flatten(2).transpose(1, 2)).squeeze(2)  # (n_img, g*g, d)
            image_rows = toks.reshape(-1, d)
            img_slot = {i: j for j, i in enumerate(order_parts)}
        n_img_tok = grid * grid

        box_idx = [i for i, p in enumerate(prepared) if "box" in p.order]
        region_rows = torch.zeros(0, d, device=dev)
        region_start: dict[int, int] = {}
        if box_idx:
            region_rows = self.regions.batched([fmaps[i] for i in box_idx], [prepared[i].boxes.to(dev) for i in box_idx])
            start = 0
            for i in box_idx:
                region_start[i] = start
                start += prepared[i].boxes.shape[0]

        loc_idx = [i for i, p in enumerate(prepared) if p.lat is not None]
        loc_rows = torch.zeros(0, d, device=dev)
        k_loc = self.location_proj.tokens
        if loc_idx:
            lat = torch.tensor([prepared[i].lat for i in loc_idx], device=dev)
            lon = torch.tensor([prepared[i].lon for i in loc_idx], device=dev)
            loc_rows = self.location_proj(self.location_features(lat, lon)).reshape(-1, d)  # (n_loc * k, d)
        loc_slot = {i: j for j, i in enumerate(loc_idx)}

        # layout: segments of (block, start row, length, type, is_wrapper); blocks: 0 ids, 1 image, 2 region, 3 location
        ids_flat: list[int] = []

        def ids_segment(ids: list[int], typ: int, wrapper: bool = False) -> tuple:
            ids_flat.extend(ids)
            return (0, len(ids_flat) - len(ids), len(ids), typ, wrapper)

        layouts = []
        for i, p in enumerate(prepared):
            seg = []
            if bb.prefix_ids:
                seg.append(ids_segment(bb.prefix_ids, TYPE_TEXT, True))
            if p.instruction is not None:
                seg.append(ids_segment(instr_ids[p.instruction], TYPE_INSTRUCTION))
            for m in p.order:
                if m == "image":
                    seg.append((1, img_slot[i] * n_img_tok, n_img_tok, TYPE_IMAGE, False))
                elif m == "box":
                    seg.append((2, region_start[i], p.boxes.shape[0], TYPE_REGION, False))
                elif m == "location":
                    seg.append((3, loc_slot[i] * k_loc, k_loc, TYPE_LOCATION, False))
                elif m == "text":
                    seg.append(ids_segment(text_ids[p.text], TYPE_TEXT))
            if bb.suffix_ids:
                seg.append(ids_segment(bb.suffix_ids, TYPE_TEXT, True))
            layouts.append(seg)
        lengths = [sum(s[2] for s in seg) for seg in layouts]
        limit = getattr(bb, "max_positions", None)
        for i, n in enumerate(lengths):
            if limit and n > limit:
                raise GeoVecInputError(f"sequence of {n} tokens exceeds the encoder's {limit} (too many boxes?)", i)

        token_rows = bb.embed_tokens(torch.tensor(ids_flat, dtype=torch.long, device=dev)) if ids_flat \
            else torch.zeros(0, d, device=dev)
        blocks = [token_rows, image_rows, region_rows, loc_rows]
        offsets = np.cumsum([0] + [b.shape[0] for b in blocks])
        pad_row = int(offsets[-1])  # the all-zero row appended below
        B, T = len(prepared), max(lengths)
        index = np.full((B, T), pad_row, dtype=np.int64)
        types = np.zeros((B, T), dtype=np.int64)
        attn = np.zeros((B, T), dtype=np.int64)
        pool_mask = np.zeros((B, T), dtype=np.float32)
        for b, seg in enumerate(layouts):
            start = T - lengths[b] if bb.padding_side == "left" else 0
            pos = start
            # region_pooling "regions": an item with boxes stands for the marked region, so the mean runs
            # over its region tokens (which attend to the whole image) and its own text only, not over the
            # image tokens or the sequence's wrapper tokens ([CLS]/[SEP]) that summarise the whole scene
            region_item = cfg.region_pooling == "regions" and any(s[3] == TYPE_REGION for s in seg)
            for block, row, n, typ, wrapper in seg:
                index[b, pos:pos + n] = np.arange(offsets[block] + row, offsets[block] + row + n)
                types[b, pos:pos + n] = typ
                skip = typ == TYPE_INSTRUCTION and not cfg.pool_instruction
                skip |= region_item and (typ == TYPE_IMAGE or wrapper)
                if not skip:
                    pool_mask[b, pos:pos + n] = 1.0
                pos += n
            attn[b, start:pos] = 1
        dtype = token_rows.dtype
        rows = torch.cat([blk.to(dtype) for blk in blocks] + [torch.zeros(1, d, dtype=dtype, device=dev)])
        embeds = rows[torch.from_numpy(index).to(dev)]
        return (embeds, torch.from_numpy(types).to(dev), torch.from_numpy(attn).to(dev),
                torch.from_numpy(pool_mask).to(dev))

    def embed_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        return self.project(self.pool_prepared(prepared))

    def pool_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        """The pooled encoder states (B, hidden) before the projection head (training caches these for
        inputs whose encoder path is frozen)."""
        if not prepared:
            raise GeoVecInputError("no items to embed (empty batch)")
        embeds, types, attn, pool_mask = self._assemble(prepared)
        text_only = not bool((types >= TYPE_IMAGE).any())  # TYPE_IMAGE, TYPE_REGION, TYPE_LOCATION come last
        hidden = self.encode_sequence(embeds + self.type_embed(types), attn, text_only=text_only)
        mode = self.config.pooling or self.backbone.default_pooling
        # last-token / CLS pooling read the attended sequence; mean pooling skips the instruction
        return pool(hidden, pool_mask if mode == "mean" else attn, mode)

    # --- LoRA ------------------------------------------------------------------------------------------------
    def add_lora(self, settings) -> list[str]:
        """Adapters on the backbone's transformer (default target modules: the backbone's ``lora_targets``)."""
        self.backbone.model = lora.add_lora(self.backbone.model, settings, self.backbone.lora_targets)
        return lora.adapter_names(self)

    def lora_merged_state(self) -> dict[str, torch.Tensor]:
        """The weights the adapters modify, with their update merged in, under the names a model without adapters
        uses (``backbone.model.encoder.layer.0.attention.self.query.weight``); empty without adapters."""
        inner = self.backbone.model
        if not lora.is_adapted(inner):
            return {}
        plain = lora.merged(inner).state_dict()
        return {f"backbone.model.{n}": plain[n].detach() for n in lora.adapted_weights(inner)}

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` holding the trained parameters only (the frozen
        pretrained towers are rebuilt from their packages on load). LoRA adapters are merged into the weights
        they adapt, which the saved config then lists as trained: the checkpoint loads without peft."""
        merged = self.lora_merged_state()
        if not merged:
            return save_trained(self, directory, dtype)
        state = {lora.unwrapped_name(n): p.detach() for n, p in self.named_parameters()
                 if self.is_trainable_name(n) and "lora_" not in n}
        state.update(merged)
        config = GeoVecConfig.from_dict({**asdict(self.config), "trainable": sorted(set(self.config.trainable) | set(merged))})
        return save_trained(self, directory, dtype, state=state, config=config)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "SingleEncoderModel":
        directory = Path(directory)
        model = cls(GeoVecConfig.from_json(directory / "config.json"))
        load_trained(model, directory)
        model.source_dir = directory  # an ONNX export may sit beside the checkpoint, in <directory>/onnx
        return model.eval()
