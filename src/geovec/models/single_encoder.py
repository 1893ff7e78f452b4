"""The compact single-encoder model: modality towers -> one interleaved token sequence (:mod:`geovec.models.
sequence`) -> one transformer -> pooling -> projection head -> L2-normalised vector."""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from geovec.inputs import GeoRef, GeoVecInputError, Item, read_image
from geovec.inputs.policy import read_policy
from geovec.models import lora
from geovec.models.backbones import build_backbone
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import save_pretrained
from geovec.models.config import GeoVecConfig
from geovec.models.pixels import resize_to
from geovec.models.pooling import pool
from geovec.models.layout import TYPE_IMAGE
from geovec.models.sequence import assemble
from geovec.models.stages import Stage, StagedModel
from geovec.models.towers import LocationTower, Projector, RegionTokens
from geovec.models.vision import build_vision_tower, run_by_size, target_size  # noqa: F401  (target_size: index)


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
        self.mark_trainable()
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
        out = (self.vision.normalize(resize_to(raster.pixels, w, h)), raster.georef, raster.width, raster.height, raster.pixels)
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
        return run_by_size(pixels, lambda batch: self.stages["vision"](batch))

    def location_features(self, lat: torch.Tensor, lon: torch.Tensor) -> torch.Tensor:
        return self.stages["location"](lat, lon)

    def encode_sequence(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                        text_only: bool = False) -> torch.Tensor:
        """The backbone on summed token + type embeddings (B, T, d) -> hidden states (B, T, d). ``text_only``: the
        batch has no image, region or location tokens (a backend may then run its text-only encoder graph, e.g.
        the int8 one of :mod:`geovec.runtime.quantize`)."""
        return self.stages["encoder_text" if text_only else "encoder"](inputs_embeds, attention_mask)

    def text_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The backbone read on its own (a sentence, its tokenizer's special tokens included): token ids and
        mask (B, T) -> token states (B, T, d), through :meth:`encode_sequence` (so an attached backend runs it).
        The backbone adds its own position and token-type embeddings to input embeddings exactly as to ids."""
        return self.encode_sequence(self.backbone.embed_tokens(ids), mask, text_only=True)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """The projection head (B, hidden) -> (B, embed_dim)."""
        return self.stages["head"](pooled)

    def embed_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        return self.project(self.pool_prepared(prepared))

    def pool_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        """The pooled encoder states (B, hidden) before the projection head (training caches these for
        inputs whose encoder path is frozen)."""
        if not prepared:
            raise GeoVecInputError("no items to embed (empty batch)")
        embeds, types, attn, pool_mask = assemble(self, prepared)
        text_only = not bool((types >= TYPE_IMAGE).any())  # TYPE_IMAGE, TYPE_REGION, TYPE_LOCATION come last
        return self.pool_sequence(embeds, types, attn, pool_mask, text_only)

    def pool_sequence(self, embeds: torch.Tensor, types: torch.Tensor, attn: torch.Tensor, pool_mask: torch.Tensor,
                      text_only: bool = False) -> torch.Tensor:
        """An assembled sequence (:func:`~geovec.models.sequence.assemble`) -> pooled encoder states (B, hidden):
        type embeddings added, the encoder, pooling."""
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
        pretrained towers are rebuilt from their packages on load); LoRA adapters merged (:func:`~geovec.models.
        checkpoint.save_pretrained`)."""
        return save_pretrained(self, directory, dtype)
