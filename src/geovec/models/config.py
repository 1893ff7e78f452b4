"""The model configuration, saved as ``config.json`` next to the trained weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from geovec.models.instructions import DEFAULT_QUERY_INSTRUCTIONS

# Parameter-name prefixes that are trained by default: everything new, none of the pretrained towers.
DEFAULT_TRAINABLE = [
    "vision_proj.",
    "regions.",
    "location_proj.",
    "type_embed.",
    "head.",
    "logit_scale",
]


@dataclass
class GeoVecConfig:
    """Everything needed to rebuild a model around its trained weights.

    Image sizes are in pixels: an image is resized (aspect kept) so its longer side lies in
    ``[image_min_size, image_max_size]``, rounded to a multiple of the vision tower's stride (32); this is
    the memory/speed knob. ``image_grid``: the feature map is pooled to ``grid x grid`` image tokens.
    ``vision``: a name of the vision-tower registry (:func:`geovec.models.vision.available_vision_towers`).
    """

    name: str = "geovec-compact"
    architecture: str = "single-encoder"
    backbone: str = "minilm"
    backbone_path: str | None = None  # local directory for backbones that need one (qwen2-vl)
    vision: str = "efficientnet-lite0"
    location: str = "geoclip"
    embed_dim: int = 384
    image_min_size: int = 224
    image_max_size: int = 448
    image_grid: int = 7
    roi_bins: int = 2
    box_fourier_freqs: int = 8
    location_tokens: int = 1
    pooling: str = "mean"
    pool_instruction: bool = False  # mean pooling skips instruction tokens (INSTRUCTOR-style)
    region_pooling: str = "all"  # "regions": mean pooling of an item with boxes skips its image tokens
    max_text_tokens: int = 96
    max_instruction_tokens: int = 32
    temperature: float = 0.05
    trainable: list[str] = field(default_factory=lambda: list(DEFAULT_TRAINABLE))
    query_instructions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUERY_INSTRUCTIONS))
    document_instructions: dict[str, str] = field(default_factory=dict)  # task -> override; else generic
    revision: str = "untrained"
    extra: dict = field(default_factory=dict)  # backbone-specific settings

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "GeoVecConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> "GeoVecConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
