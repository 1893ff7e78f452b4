"""The dual-path compact model: the single encoder and a global path, read out as one embedding.

The single encoder (:class:`~geovec.models.single_encoder.SingleEncoderModel`) reads every part of an item in
one interleaved sequence: that is what grounds a referring expression inside a mosaic or applies an edit to a
scene. A global embedding of the same towers, the frozen-towers probe's maps (:mod:`geovec.models.probe`: the
mean-pooled EfficientNet-Lite0 feature map through an MLP into the frozen all-MiniLM-L6-v2 sentence space, a box
as its crop, a location through a linear map of GeoCLIP, the parts summed), is what retrieves whole scenes and
regions best. The dual-path model outputs both, each L2-normalised, concatenated with the encoder half weighted
by ``encoder_weight`` (the ``global_path`` entry of ``config.extra``), and L2-normalised again::

    e(x) = [g(x), w * s(x)] / sqrt(1 + w^2)        g, s unit vectors; cosine(e(x), e(y)) = (g.g' + w^2 s.s') / (1 + w^2)

so cosine similarity is a fixed mix of the two paths' similarities. The output is a unit vector by construction, so
``encode(..., normalize=False)`` returns the same vectors as ``normalize=True``. The towers (vision, GeoCLIP, MiniLM) are
shared: the global path reuses the encoder's feature map for images already at the global path's size, its
GeoCLIP features and its MiniLM weights (text is embedded twice: once in the sequence with the instruction,
once on its own as a sentence). Instructions steer the encoder half only. Optionally the global path carries its own
fine-tuned copies of the towers' top layers: a vision top (``vision_top_split``, :mod:`geovec.models.vision_top`)
and a text top (``text_top_split``, :mod:`geovec.models.text_top`, trained by ``geovec.train.text_top``); the
encoder half keeps the frozen towers either way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from geovec.inputs import Item
from geovec.models.config import GeoVecConfig
from geovec.models.probe import ImageHead, box_crop, preprocess_pixels
from geovec.models.single_encoder import PreparedItem, SingleEncoderModel
from geovec.models.stages import Stage
from geovec.models.towers import LocationTower
from geovec.models.text_top import TextTop
from geovec.models.text_top import run_to_split as text_to_split
from geovec.models.vision_top import VisionTop, run_from_split, run_to_split

DEFAULTS = {"hidden": 1024, "layer_norm": True, "image_size": 224, "encoder_weight": 1.0, "max_text_tokens": 256,
            "vision_top_split": None, "text_top_split": None}
GLOBAL_PARAMS = ("global_image.", "global_location.", "global_vision_top.", "global_text_top.")


class DualPathModel(SingleEncoderModel):
    """``architecture: "dual-path"``; ``config.extra["global_path"]`` holds the global path's settings."""

    # the embedding is not head(pooled encoder states) alone: training must not cache text states that way
    text_states_cacheable = False

    def __init__(self, config: GeoVecConfig):
        settings = {**DEFAULTS, **config.extra.get("global_path", {})}
        config.extra["global_path"] = settings
        for p in GLOBAL_PARAMS:  # the global maps are trained parts: saved and loaded with the checkpoint
            if p not in config.trainable:
                config.trainable = [*config.trainable, p]
        super().__init__(config)
        d = self.backbone.hidden_size
        if config.embed_dim != d:
            raise ValueError(f"dual-path needs embed_dim == the encoder width ({d}), got {config.embed_dim}")
        self.global_image = ImageHead(self.vision.channels, int(settings["hidden"]), d, bool(settings["layer_norm"]))
        self.global_location = nn.Linear(LocationTower.out_dim, d)
        split = settings.get("vision_top_split")
        # optional: the global path's own copy of the tower's top blocks (fine-tuned), branching at block `split`
        self.global_vision_top = VisionTop(self.vision.net, int(split)) if split is not None else None
        tsplit = settings.get("text_top_split")
        # optional: the global path's own copy of the text tower's top layers (fine-tuned), from layer `tsplit`
        self.global_text_top = TextTop(self.backbone.model, int(tsplit)) if tsplit is not None else None
        self.apply_trainable(config.trainable)
        self.eval()

    @property
    def settings(self) -> dict:
        return self.config.extra["global_path"]

    @property
    def embed_dim(self) -> int:
        return 2 * self.config.embed_dim

    def torch_stages(self) -> dict[str, Stage]:
        """The encoder's stages, and the global path's text tower with its text top (``global_text``)."""
        stages = super().torch_stages()
        if self.global_text_top is not None:
            stages["global_text"] = Stage(
                lambda embeds, mask: global_text(self.backbone.model, self.global_text_top, embeds, mask),
                (self.backbone, self.global_text_top), GlobalTextSequence(self.backbone.model, self.global_text_top),
                stages["encoder"].example)
        return stages

    def global_sentence_embeddings(self, texts: Sequence[str], max_tokens: int = 256,
                                   batch_size: int = 64) -> torch.Tensor:
        """(N, d) unit sentence embeddings of the global path: the frozen tower's, or through its text top."""
        sequence = self.global_text_sequence if self.global_text_top is not None else None
        return self.sentence_embeddings(texts, max_tokens, batch_size, sequence=sequence)  # the backend runs it

    def global_text_sequence(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The text tower with the global path's text top on token embeddings (B, T, d) -> hidden states (the
        ``global_text`` stage)."""
        return self.stages["global_text"](inputs_embeds, attention_mask)

    # --- CPU side: the global path's own view of the image ------------------------------------------------------
    def prepare(self, item: Item) -> PreparedItem:
        prepared = super().prepare(item)
        size = int(self.settings["image_size"])
        if item.image is not None:
            if not item.boxes and max(prepared.pixels.shape[1:]) == size:
                prepared.global_pixels = None  # the encoder's own input is the global path's: one tower pass
            else:
                pixels = self.decoded_pixels(item.image)  # the encoder's decode of the same file, not a second one
                if item.boxes:
                    pixels = box_crop(pixels, item.boxes)
                prepared.global_pixels = preprocess_pixels(pixels, size)
        return prepared

    # --- forward ------------------------------------------------------------------------------------------------
    def global_embed(self, prepared: Sequence[PreparedItem], fmaps: dict[int, torch.Tensor]) -> torch.Tensor:
        """(B, d) unit vectors: the sum of the unit image / text / location embeddings of each item."""
        dev = self.device
        out = torch.zeros(len(prepared), self.config.embed_dim, device=dev)
        img = [i for i, p in enumerate(prepared) if p.pixels is not None or p.features is not None]
        if img:
            own = [i for i in img if prepared[i].global_pixels is not None]
            tower = self._global_features if self.global_vision_top is not None else self.vision_features
            extra = dict(zip(own, tower([prepared[i].global_pixels for i in own]))) if own else {}
            pooled = torch.stack([(extra[i] if i in extra else fmaps[i]).float().mean(dim=(1, 2)) for i in img])
            out[img] += F.normalize(self.global_image(pooled.to(dev)), dim=-1)
        txt = [i for i, p in enumerate(prepared) if p.text is not None]
        if txt:
            with torch.no_grad():
                out[txt] += self.global_sentence_embeddings([prepared[i].text for i in txt],
                                                            int(self.settings["max_text_tokens"])).to(dev)
        loc = [i for i, p in enumerate(prepared) if p.lat is not None]
        if loc:
            lat = torch.tensor([prepared[i].lat for i in loc], device=dev)
            lon = torch.tensor([prepared[i].lon for i in loc], device=dev)
            out[loc] += F.normalize(self.global_location(self.location_features(lat, lon).float()), dim=-1)
        return F.normalize(out, dim=-1)

    def _split_features(self, pixels: list[torch.Tensor], encoder: bool = True
                        ) -> tuple[list[torch.Tensor] | None, list[torch.Tensor]]:
        """(frozen feature maps for the encoder, or None without ``encoder``; the global top's feature maps) from
        one shared run of the tower up to the split block, batched by image size."""
        net, split = self.vision.net, self.global_vision_top.split
        enc: list = [None] * len(pixels)
        glob: list = [None] * len(pixels)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(pixels):
            groups.setdefault(tuple(p.shape), []).append(i)
        for idx in groups.values():
            with torch.no_grad():
                act = run_to_split(net, torch.stack([pixels[i] for i in idx]).to(self.device), split)
                e = run_from_split(net, act, split) if encoder else None
            g = self._tower(self.global_vision_top, act)
            for j, i in enumerate(idx):
                glob[i] = g[j]
                if encoder:
                    enc[i] = e[j]
        return (enc if encoder else None), glob

    def _global_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        return self._split_features(pixels, encoder=False)[1]

    def embed_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        # the encoder's feature maps are computed once and shared with the global path
        need = [i for i, p in enumerate(prepared) if p.pixels is not None and p.features is None]
        glob_maps: dict[int, torch.Tensor] = {}
        if self.global_vision_top is not None:
            if any(p.features is not None and p.global_pixels is None for p in prepared):
                raise ValueError("a dual-path model with its own vision top needs pixels, not cached feature maps "
                                 "(train it without feature_cache)")
            enc_maps, g_maps = self._split_features([prepared[i].pixels for i in need])
            fmaps = dict(zip(need, enc_maps))
            glob_maps = dict(zip(need, g_maps))
        else:
            fmaps = dict(zip(need, self.vision_features([prepared[i].pixels for i in need])))
        for i, p in enumerate(prepared):
            if p.features is not None:
                fmaps[i] = p.features
        staged = [p if i not in fmaps or p.features is not None else _with_features(p, fmaps[i])
                  for i, p in enumerate(prepared)]
        encoder = F.normalize(self.project(self.pool_prepared(staged)), dim=-1)
        w = float(self.settings["encoder_weight"])
        glob = self.global_embed(prepared, glob_maps if self.global_vision_top is not None else fmaps)
        return torch.cat([glob, w * encoder], dim=-1) / math.sqrt(1.0 + w * w)

    # --- building one from its two halves ------------------------------------------------------------------------
    @classmethod
    def from_parts(cls, encoder_dir: str | Path, probe_dir: str | Path, encoder_weight: float = 1.0,
                   name: str = "geovec-compact", revision: str | None = None, vision_top: VisionTop | None = None,
                   image_head: nn.Module | None = None, text_top: TextTop | None = None) -> "DualPathModel":
        """A dual-path model from a single-encoder checkpoint (or a dual-path one: its encoder half is used) and a
        trained probe folder; their trained weights are copied, the towers are the same pretrained packages.
        ``vision_top`` / ``image_head``: a fine-tuned global vision top and MLP (``geovec.train.global_top``)
        replacing the probe's frozen top and its MLP; ``text_top``: a fine-tuned text top (``geovec.train.text_top``)."""
        from safetensors.torch import load_file

        from geovec.models.checkpoint import load_trained
        from geovec.models.probe import ProbeConfig

        config = GeoVecConfig.from_json(Path(encoder_dir) / "config.json")
        probe_cfg = ProbeConfig.from_json(Path(probe_dir) / "config.json")
        tuned = tuned_text_layers(config.trainable)
        text_split = text_top.split if text_top is not None else (min(tuned) if tuned else None)
        if text_top is not None and tuned and min(tuned) < text_top.split:
            raise ValueError(f"the encoder fine-tuned MiniLM layer {min(tuned)}, below the text top's split "
                             f"{text_top.split}: the global path's sentence pass would read a fine-tuned layer")
        config.architecture = "dual-path"
        config.name = name
        config.extra = {**config.extra, "global_path": {
            **DEFAULTS, "hidden": probe_cfg.hidden, "layer_norm": probe_cfg.layer_norm,
            "image_size": probe_cfg.image_size, "max_text_tokens": probe_cfg.max_text_tokens,
            "encoder_weight": float(encoder_weight),
            "vision_top_split": vision_top.split if vision_top is not None else None,
            # the sentence pass must read the pretrained text tower: from the encoder's first fine-tuned layer on
            # it runs the global path's own copy (the text top given, else a copy of the pretrained layers)
            "text_top_split": text_split,
            "from": {"encoder": config.revision, "probe": probe_cfg.revision,
                     **({"vision_top": "geovec.train.global_top"} if vision_top is not None else {}),
                     **({"text_top": "geovec.train.text_top"} if text_top is not None else
                        {"text_top": "the pretrained layers"} if text_split is not None else {})}}}
        if revision:
            config.revision = revision
        model = cls(config)
        # the encoder half only: a dual-path encoder_dir's own global path is replaced by the parts given here
        load_trained(model, encoder_dir, required=True, ignore_missing=GLOBAL_PARAMS, skip=GLOBAL_PARAMS)
        probe_state = load_file(str(Path(probe_dir) / "model.safetensors"))
        with torch.no_grad():
            for name_, t in probe_state.items():
                if name_.startswith("image_head."):
                    dict(model.global_image.named_parameters())[name_[len("image_head."):]].copy_(t)
                elif name_.startswith("location_map."):
                    dict(model.global_location.named_parameters())[name_[len("location_map."):]].copy_(t)
            if image_head is not None:
                model.global_image.load_state_dict(image_head.state_dict())
            if vision_top is not None:
                model.global_vision_top.load_state_dict(vision_top.state_dict())
            if text_top is not None:
                model.global_text_top.load_state_dict(text_top.state_dict())
        model.apply_trainable(model.config.trainable)
        return model.eval()


def global_text(bert: nn.Module, top: TextTop, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
                ) -> torch.Tensor:
    """The text tower up to the text top's split, then the top: token embeddings (B, T, d) -> hidden states."""
    return top(text_to_split(bert, None, attention_mask, top.split, inputs_embeds=inputs_embeds), attention_mask)


class GlobalTextSequence(nn.Module):
    """:func:`global_text` as one module (what an export traces)."""

    def __init__(self, bert: nn.Module, top: TextTop):
        super().__init__()
        self.bert, self.top = bert, top

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return global_text(self.bert, self.top, inputs_embeds, attention_mask)


def tuned_text_layers(trainable: Sequence[str]) -> list[int]:
    """The MiniLM layer indices a ``trainable`` list fine-tunes (``backbone.model.encoder.layer.N.``)."""
    import re

    return sorted({int(m.group(1)) for t in trainable if (m := re.match(r"backbone\.model\.encoder\.layer\.(\d+)\.", t))})


def _with_features(p: PreparedItem, fmap: torch.Tensor) -> PreparedItem:
    """The same prepared item with its feature map attached (the encoder then skips the tower)."""
    from dataclasses import replace

    return replace(p, features=fmap)
