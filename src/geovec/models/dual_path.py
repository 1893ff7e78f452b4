"""The dual-path compact model: a single encoder and a global path, read out as one embedding.

The single encoder (:class:`~geovec.models.single_encoder.SingleEncoderModel`) reads every part of an item in
one interleaved sequence: that is what grounds a referring expression inside a mosaic or applies an edit to a
scene. The global path (:class:`~geovec.models.global_path.GlobalPath`, the frozen-towers probe's maps: pooled
image features through an MLP into the sentence space of the text tower, a box as its crop, a location through a
linear map of GeoCLIP, the parts summed) is what retrieves whole scenes and regions best. The model holds both
and outputs both, each L2-normalised, concatenated with the encoder half weighted by ``encoder_weight`` (the
``global_path`` entry of ``config.extra``), and L2-normalised again::

    e(x) = [g(x), w * s(x)] / sqrt(1 + w^2)        g, s unit vectors; cosine(e(x), e(y)) = (g.g' + w^2 s.s') / (1 + w^2)

so cosine similarity is a fixed mix of the two paths' similarities, and ``encode(..., normalize=False)`` returns
the same vectors as ``normalize=True``. A query carrying the named instruction of a task listed in ``query_weights``
(the ``global_path`` entry; e.g. ``{"vqa": 0.0}``) has its global half weighted by that value ``a`` instead of 1,
``e(x) = [a g(x), w s(x)] / sqrt(a^2 + w^2)``: for that task the query's ranking leans on the encoder by ``a``
(a question is answered by the encoder half; the global path only matches its words). The global path reads the encoder's towers (vision, GeoCLIP, MiniLM: the
same modules, run as the encoder runs them) and reuses the encoder's feature map where its view of an image is the
encoder's input. Instructions steer the encoder half only. Its optional vision top and text top are its own
fine-tuned copies of the towers' top layers; the encoder half keeps the frozen towers either way.

Parameter names: ``encoder.<single encoder's name>`` and ``global_path.<part>`` (``image_head``,
``location_map``, ``vision_top``, ``text_top``). Checkpoints of the first layout (the encoder's names at the top,
``global_image.`` ...) load through :data:`LAYOUT_1_RENAMES`.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from geovec.inputs import Item
from geovec.models import lora
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import WEIGHTS_FILE, load_trained, save_pretrained
from geovec.models.config import GeoVecConfig
from geovec.models.global_path import DEFAULTS as GLOBAL_DEFAULTS
from geovec.models.global_path import GlobalInput, GlobalPath, Towers
from geovec.models.instructions import check_task, global_half_weight
from geovec.models.single_encoder import PreparedItem, SingleEncoderModel
from geovec.models.stages import Stage, StagedModel
from geovec.models.text_top import TextTop, run_to_split
from geovec.models.vision_top import VisionTop

DEFAULTS = {**GLOBAL_DEFAULTS, "encoder_weight": 1.0}
ENCODER, GLOBAL = "encoder.", "global_path."
GLOBAL_TRAINABLE = [GLOBAL + p for p in ("image_head.", "location_map.", "vision_top.", "text_top.")]

# The first parameter layout (the dual-path model as a subclass of the single encoder, r1-r20 checkpoints): old
# prefix -> new. Any other name was the encoder's own and gains ``encoder.``; fnmatch patterns that start with a
# wildcard already match across both halves and stay as they are.
LAYOUT_1_RENAMES = {
    "global_image.": GLOBAL + "image_head.",
    "global_location.": GLOBAL + "location_map.",
    "global_vision_top.": GLOBAL + "vision_top.",
    "global_text_top.": GLOBAL + "text_top.",
}


def upgrade_name(name: str) -> str:
    """A parameter name or trainable pattern of either layout, in the current one (names of the current layout,
    which all start with ``encoder.`` or ``global_path.``, are returned as they are)."""
    if name.startswith((ENCODER, GLOBAL)) or name[:1] in ("*", "?", "["):
        return name
    for old, new in LAYOUT_1_RENAMES.items():
        if name.startswith(old):
            return new + name[len(old):]
    return ENCODER + name


def encoder_patterns(trainable: Sequence[str]) -> list[str]:
    """The encoder half's share of a dual-path ``trainable`` list (either layout), in the encoder's own names."""
    out = []
    for p in map(upgrade_name, trainable):
        if p.startswith(ENCODER):
            out.append(p[len(ENCODER):])
        elif not p.startswith(GLOBAL):
            out.append(p)  # a wildcard pattern
    return out


def tuned_text_layers(trainable: Sequence[str]) -> list[int]:
    """The MiniLM layer indices a ``trainable`` list fine-tunes (``backbone.model.encoder.layer.N.``)."""
    return sorted({int(m.group(1)) for t in trainable if (m := re.match(r"backbone\.model\.encoder\.layer\.(\d+)\.", t))})


class DualPathModel(StagedModel, EmbeddingModel):
    """``architecture: "dual-path"``; ``config.extra["global_path"]`` holds the global path's settings."""

    # the embedding is not head(pooled encoder states) alone: training must not cache text states that way
    text_states_cacheable = False
    supports_image_features = True

    def __init__(self, config: GeoVecConfig):
        super().__init__()
        # the model's own copy, in the current layout (the config given is left as it is)
        self.config = GeoVecConfig.from_dict({**asdict(config), "trainable": [upgrade_name(p) for p in config.trainable]})
        settings = self.settings
        extra = {k: v for k, v in config.extra.items() if k != "global_path"}
        self.encoder = SingleEncoderModel(GeoVecConfig.from_dict({
            **asdict(config), "architecture": "single-encoder", "extra": extra,
            "trainable": encoder_patterns(config.trainable)}))
        enc = self.encoder
        d = enc.backbone.hidden_size
        if config.embed_dim != d:
            raise ValueError(f"dual-path needs embed_dim == the encoder width ({d}), got {config.embed_dim}")
        for task, a in (settings.get("query_weights") or {}).items():
            check_task(task)
            if not 0.0 <= float(a) <= 1.0:
                raise ValueError(f"global_path query_weights[{task!r}] = {a}: a query's global-half weight is in [0, 1]")
        towers = Towers(vision=enc.vision, text=enc.backbone, vision_features=enc.vision_features,
                        location_features=enc.location_features, text_states=enc.text_states,
                        text_top_states=self.global_text_sequence)
        self.global_path = GlobalPath(towers, hidden=int(settings["hidden"]), layer_norm=bool(settings["layer_norm"]),
                                      image_size=int(settings["image_size"]),
                                      max_text_tokens=int(settings["max_text_tokens"]),
                                      vision_top_split=settings.get("vision_top_split"),
                                      text_top_split=settings.get("text_top_split"))
        self.mark_trainable()
        self.eval()

    # --- the parts, as the rest of geovec sees them ---------------------------------------------------------------
    @property
    def settings(self) -> dict:
        """The global path's settings (defaults filled in) and ``encoder_weight``."""
        return {**DEFAULTS, **self.config.extra.get("global_path", {})}

    @property
    def embed_dim(self) -> int:
        return 2 * self.config.embed_dim

    # the encoder's modules training reads
    backbone = property(lambda self: self.encoder.backbone)
    vision = property(lambda self: self.encoder.vision)
    location = property(lambda self: self.encoder.location)
    head = property(lambda self: self.encoder.head)
    logit_scale = property(lambda self: self.encoder.logit_scale)
    global_text_top = property(lambda self: self.global_path.text_top)

    # --- the exportable steps: one set of slots for both halves (geovec.models.stages) --------------------------
    def torch_stages(self) -> dict[str, Stage]:
        """The encoder half's stages, and the global path's text tower with its text top (``global_text``)."""
        return {**self.encoder.torch_stages(), **self._global_stages()}

    def _global_stages(self) -> dict[str, Stage]:
        top = self.global_path.text_top
        if top is None:
            return {}
        # the step looks its modules up when it runs, as the encoder's do (LoRA replaces the backbone's model)
        return {"global_text": Stage(lambda embeds, mask: global_text(self.backbone.model, self.global_path.text_top,
                                                                      embeds, mask),
                                     (self.backbone, top), GlobalTextSequence(self.backbone.model, top),
                                     self.encoder.torch_stages()["encoder"].example)}

    @property
    def stages(self) -> dict:
        """The encoder half's slots, which its forward pass reads, with ``global_text`` beside them: a runtime
        attached to this model (or a benchmark timing the stages) reaches both halves through this one dict."""
        slots = self.encoder.stages
        if "global_text" not in slots:  # the encoder's own torch slots (new, back to torch, or a copy)
            slots.update(self._global_stages())
        return slots

    def use_stages(self, stages: dict | None = None, runner=None) -> None:
        self.encoder.use_stages(stages, runner)  # the encoder keeps them all (global_text too): see ``stages``

    @property
    def runner(self):
        return self.encoder.runner

    def global_text_sequence(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The text tower with the global path's text top: token ids and mask -> token states (the
        ``global_text`` stage, on the encoder's token embeddings)."""
        return self.stages["global_text"](self.backbone.embed_tokens(ids), attention_mask)

    # --- extension points (geovec.models.base) ----------------------------------------------------------------------
    pretrained_prefixes = tuple(ENCODER + p for p in EmbeddingModel.pretrained_prefixes)

    def apply_trainable(self, patterns: list[str]) -> None:
        self.config.trainable = [upgrade_name(p) for p in patterns]
        self.encoder.config.trainable = encoder_patterns(self.config.trainable)
        self.mark_trainable()

    def frozen_modules(self) -> list[nn.Module]:
        return self.encoder.frozen_modules()

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per module of the encoder half (its towers among them) and per part of the global path
        (``global_path.image_head`` ...), the trainable ones and the total."""
        groups = {k: v for k, v in self.encoder.parameter_counts().items() if k not in ("trainable", "total")}
        for name, p in self.global_path.named_parameters():
            key = GLOBAL + name.split(".", 1)[0]
            groups[key] = groups.get(key, 0) + p.numel()
        groups["trainable"] = sum(p.numel() for n, p in self.named_parameters() if self.is_trainable_name(n))
        groups["total"] = sum(p.numel() for p in self.parameters())
        return groups

    def image_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.encoder.image_features(pixels)

    def vision_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.encoder.vision_features(pixels)

    @contextmanager
    def using_image_features(self, provider):
        """Feature maps from ``provider`` for both halves (the global path runs the encoder's tower)."""
        with self.encoder.using_image_features(provider):
            yield self

    @property
    def image_tower_frozen(self) -> bool:
        return self.encoder.image_tower_frozen

    def image_features_signature(self) -> str:
        return self.encoder.image_features_signature()

    def prepare_with_features(self, item: Item, features: torch.Tensor, size: tuple[int, int]) -> PreparedItem:
        return self.encoder.prepare_with_features(item, features, size)

    def add_lora(self, settings) -> list[str]:
        self.encoder.add_lora(settings)
        return lora.adapter_names(self)

    def lora_merged_state(self) -> dict[str, torch.Tensor]:
        return {ENCODER + n: t for n, t in self.encoder.lora_merged_state().items()}

    @staticmethod
    def upgrade_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of either layout in the current one (:data:`LAYOUT_1_RENAMES`)."""
        return {upgrade_name(n): t for n, t in state.items()}

    # --- CPU side: the encoder's preparation and the global path's own view of the image --------------------------
    def prepare(self, item: Item) -> PreparedItem:
        prepared = self.encoder.prepare(item)
        if item.image is not None:
            # the encoder's decode of the same file, not a second one
            pixels = self.encoder.decoded_pixels(item.image)
            prepared.global_pixels = self.global_path.view(pixels, item.boxes, shared=prepared.pixels)
        return prepared

    def batch_key(self, prepared: PreparedItem) -> tuple:
        return self.encoder.batch_key(prepared)

    # --- forward ------------------------------------------------------------------------------------------------
    def embed_prepared(self, prepared: Sequence[PreparedItem]) -> torch.Tensor:
        enc, glob = self.encoder, self.global_path
        # the encoder's feature maps are computed once and shared with the global path
        need = [i for i, p in enumerate(prepared) if p.pixels is not None and p.features is None]
        shared: dict[int, torch.Tensor] = {}
        if glob.vision_top is not None:
            if any(p.features is not None and p.global_pixels is None for p in prepared):
                raise ValueError("a dual-path model with its own vision top needs pixels, not cached feature maps "
                                 "(train it without feature_cache)")
            maps = glob.split_feature_maps([prepared[i].pixels for i in need])
            fmaps = {i: m[0] for i, m in zip(need, maps)}
            shared = {i: m[1] for i, m in zip(need, maps)}
        else:
            fmaps = dict(zip(need, enc.vision_features([prepared[i].pixels for i in need])))
            shared = fmaps
        for i, p in enumerate(prepared):
            if p.features is not None:
                fmaps[i] = p.features
        staged = [p if i not in fmaps or p.features is not None else replace(p, features=fmaps[i])
                  for i, p in enumerate(prepared)]
        encoder = F.normalize(enc.project(enc.pool_prepared(staged)), dim=-1)
        views = [GlobalInput(text=p.text, lat=p.lat, lon=p.lon, pixels=p.global_pixels,
                             fmap=shared.get(i) if p.global_pixels is None else None) for i, p in enumerate(prepared)]
        weights = self.global_weights([p.instruction for p in prepared])
        return self.combine(glob.embed(views), encoder,
                            None if weights is None else torch.tensor(weights, device=encoder.device))

    def global_weights(self, instructions: Sequence[str | None]) -> list[float] | None:
        """Per item, the weight of its global half: ``query_weights[task]`` where the item carries that task's named
        query instruction, else 1; None where every item has 1."""
        weights = [global_half_weight(self.config, i) for i in instructions]
        return None if all(a == 1.0 for a in weights) else weights

    def combine(self, glob: torch.Tensor, encoder: torch.Tensor, global_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The two halves' unit vectors (B, d) each -> the model's embedding (B, 2d) (see the module docstring);
        ``global_weight`` (B,): per-item weights of the global half (default 1)."""
        w = float(self.settings["encoder_weight"])
        if global_weight is None:
            return torch.cat([glob, w * encoder], dim=-1) / math.sqrt(1.0 + w * w)
        a = global_weight.to(glob.dtype)[:, None]
        return torch.cat([a * glob, w * encoder], dim=-1) / torch.sqrt(a * a + w * w)

    # --- checkpoints ------------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        return save_pretrained(self, directory, dtype)

    @classmethod
    def from_parts(cls, encoder_dir: str | Path, probe_dir: str | Path, encoder_weight: float = 1.0,
                   name: str = "geovec-compact", revision: str | None = None, vision_top: VisionTop | None = None,
                   image_head: nn.Module | None = None, text_top: TextTop | None = None) -> "DualPathModel":
        """A dual-path model from a single-encoder checkpoint (or a dual-path one: its encoder half is used) and a
        trained probe folder: the encoder loads its checkpoint, the global path the probe's weights; the towers
        are the same pretrained packages. ``vision_top`` / ``image_head``: a fine-tuned global vision top and MLP
        (``geovec.train.global_top``) replacing the probe's frozen top and its MLP; ``text_top``: a fine-tuned
        text top (``geovec.train.text_top``)."""
        from safetensors.torch import load_file

        from geovec.models.probe import ProbeConfig

        source = GeoVecConfig.from_json(Path(encoder_dir) / "config.json")
        probe_cfg = ProbeConfig.from_json(Path(probe_dir) / "config.json")
        enc_trainable = source.trainable if source.architecture != "dual-path" else encoder_patterns(source.trainable)
        tuned = tuned_text_layers(enc_trainable)
        text_split = text_top.split if text_top is not None else (min(tuned) if tuned else None)
        if text_top is not None and tuned and min(tuned) < text_top.split:
            raise ValueError(f"the encoder fine-tuned MiniLM layer {min(tuned)}, below the text top's split "
                             f"{text_top.split}: the global path's sentence pass would read a fine-tuned layer")
        settings = {
            **DEFAULTS, "hidden": probe_cfg.hidden, "layer_norm": probe_cfg.layer_norm,
            "image_size": probe_cfg.image_size, "max_text_tokens": probe_cfg.max_text_tokens,
            "encoder_weight": float(encoder_weight),
            "vision_top_split": vision_top.split if vision_top is not None else None,
            # the sentence pass must read the pretrained text tower: from the encoder's first fine-tuned layer on
            # it runs the global path's own copy (the text top given, else a copy of the pretrained layers)
            "text_top_split": text_split,
            "from": {"encoder": source.revision, "probe": probe_cfg.revision,
                     **({"vision_top": "geovec.train.global_top"} if vision_top is not None else {}),
                     **({"text_top": "geovec.train.text_top"} if text_top is not None else
                        {"text_top": "the pretrained layers"} if text_split is not None else {})}}
        config = GeoVecConfig.from_dict({
            **asdict(source), "architecture": "dual-path", "name": name,
            "revision": revision or source.revision,
            "trainable": [ENCODER + p for p in enc_trainable] + GLOBAL_TRAINABLE,
            "extra": {**{k: v for k, v in source.extra.items() if k != "global_path"}, "global_path": settings}})
        model = cls(config)
        # each part loads its own weights: the encoder its checkpoint (a dual-path one's encoder half) ...
        model.load_encoder_half(encoder_dir)
        # ... and the global path the probe's maps, then the fine-tuned parts given
        glob = model.global_path
        glob.load_from(load_file(str(Path(probe_dir) / WEIGHTS_FILE)))
        with torch.no_grad():
            if image_head is not None:
                glob.image_head.load_state_dict(image_head.state_dict())
            if vision_top is not None:
                glob.vision_top.load_state_dict(vision_top.state_dict())
            if text_top is not None:
                glob.text_top.load_state_dict(text_top.state_dict())
        return model.eval()

    def load_encoder_half(self, encoder_dir: str | Path) -> None:
        """Replace the encoder half's trained weights with a checkpoint's (a single encoder's, or a dual-path one's
        encoder half); the global path is left as it is. A checkpoint that trained other parts than this encoder
        half is refused (``load_trained``). The config's ``global_path.from.encoder`` names the checkpoint's revision."""
        load_trained(self.encoder, encoder_dir, required=True, upgrade=encoder_half)
        source = GeoVecConfig.from_json(Path(encoder_dir) / "config.json")
        self.config.extra.setdefault("global_path", {}).setdefault("from", {})["encoder"] = source.revision

    def save_encoder_half(self, directory: str | Path, revision: str | None = None) -> Path:
        """The encoder half as a single-encoder checkpoint (what a run of the encoder alone starts from, with the
        single encoder's own loss, as r9-r20 were trained); ``revision`` names it (default: this model's)."""
        encoder = self.encoder
        kept = encoder.config.revision
        encoder.config.revision = revision or self.config.revision
        try:
            return encoder.save_pretrained(directory)
        finally:
            encoder.config.revision = kept


def encoder_half(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a single-encoder or dual-path (either layout) state dict, in the encoder's names."""
    upgraded = DualPathModel.upgrade_state_dict(state)
    return {n[len(ENCODER):]: t for n, t in upgraded.items() if n.startswith(ENCODER)}


def global_text(bert: nn.Module, top: TextTop, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
                ) -> torch.Tensor:
    """The text tower up to the text top's split, then the top: token embeddings (B, T, d) -> hidden states."""
    return top(run_to_split(bert, None, attention_mask, top.split, inputs_embeds=inputs_embeds), attention_mask)


class GlobalTextSequence(nn.Module):
    """:func:`global_text` as one module (what an export traces)."""

    def __init__(self, bert: nn.Module, top: TextTop):
        super().__init__()
        self.bert, self.top = bert, top

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return global_text(self.bert, self.top, inputs_embeds, attention_mask)
