"""Qwen2-VL / Qwen2.5-VL as the embedding model (the paper's lineage: VLM2Vec, GME, VLM2GeoVec): one token stream
per item in the model's chat format, pooled at the last token (left padding)::

    <|im_start|>system\\n{instruction}<|im_end|>\\n<|im_start|>user\\n{content}<|im_end|>\\n<|im_start|>assistant\\n<|endoftext|>

``content`` holds the item's modalities in the order given: image pad tokens at native resolution, boxes in the
grounding syntax, the location as text (plus an optional projected GeoCLIP token), text. The backbone is
fine-tuned with LoRA/DoRA (:mod:`geovec.models.lora`). Tokens per modality and the settings in ``config.extra``
(:data:`DEFAULT_EXTRA`) are described in docs/backbones.md.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch import nn

from geovec.inputs import GeoVecInputError, Item, read_image
from geovec.models import lora
from geovec.models.base import EmbeddingModel
from geovec.models.checkpoint import load_trained, save_trained
from geovec.models.config import GeoVecConfig
from geovec.models.pooling import pool

LLM_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

DEFAULT_EXTRA: dict = {
    "min_pixels": 28 * 28 * 4,  # 3,136 px: at least 4 visual tokens
    "max_pixels": 28 * 28 * 256,  # 200,704 px: at most 256 visual tokens per image (VLM2Vec uses up to 1280)
    "lora": {"r": 16, "alpha": 64, "dropout": 0.05, "dora": False, "target_modules": list(LLM_LINEAR)},
    "location_token": True,
    "dtype": "float32",
    "attn_implementation": "sdpa",
    "gradient_checkpointing": False,
    "system_default": "You are a helpful assistant.",
    # "auto": cuda:$LOCAL_RANK when CUDA is available (one GPU per torchrun process), else the CPU
    "device": "auto",
}

# parameters that train by default (fnmatch patterns over parameter names): the adapter and the new parts
DEFAULT_TRAINABLE = ["*lora_*", "location_proj.*"]

BOX_FORMATS = {"qwen2_vl": "norm1000", "qwen2_5_vl": "pixels"}


def qwen_config(backbone_path: str, name: str = "geovec-qwen2vl", **extra) -> GeoVecConfig:
    """A :class:`GeoVecConfig` for this architecture (``embed_dim`` is filled in from the backbone)."""
    merged = copy.deepcopy(DEFAULT_EXTRA)
    merged.update(extra)
    return GeoVecConfig(name=name, architecture="qwen2-vl", backbone="qwen2-vl", backbone_path=str(backbone_path),
                        vision="native", location="geoclip", embed_dim=0, pooling="last", temperature=0.02,
                        max_text_tokens=256, max_instruction_tokens=64, trainable=list(DEFAULT_TRAINABLE),
                        extra=merged)


@dataclass
class PreparedQwen:
    """CPU-side result of :meth:`Qwen2VLEmbedder.prepare`: the token ids of the whole sequence and the
    image patches it refers to."""

    input_ids: list[int]
    pixel_values: torch.Tensor | None = None  # (patches, C * temporal_patch * patch * patch)
    image_grid_thw: torch.Tensor | None = None  # (1, 3)
    lat: float | None = None
    lon: float | None = None
    text: str = field(default="", repr=False)  # the sequence as text (debugging, tests)


def _dtype(name: str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r} (float32, bfloat16, float16)") from None


class Qwen2VLEmbedder(EmbeddingModel):
    """Qwen2-VL-family embedder behind the geovec encode API (see the module docstring)."""

    def __init__(self, config: GeoVecConfig, base_dir: str | Path | None = None):
        super().__init__()
        from transformers import AutoModelForImageTextToText, AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
        from transformers.utils import logging as hf_logging

        extra = copy.deepcopy(DEFAULT_EXTRA)
        extra.update(config.extra or {})
        config.extra = extra
        self.config = config
        source = self._resolve_backbone(config.backbone_path, base_dir)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            vlm = AutoModelForImageTextToText.from_pretrained(
                source, dtype=_dtype(extra["dtype"]), attn_implementation=extra["attn_implementation"])
            self.tokenizer = AutoTokenizer.from_pretrained(source)
        finally:
            hf_logging.set_verbosity(verbosity)
        mtype = vlm.config.model_type
        if mtype not in BOX_FORMATS:
            raise ValueError(f"{source}: model_type {mtype!r} is not a Qwen2-VL family model ({sorted(BOX_FORMATS)})")
        self.model_type = mtype
        self.box_format = BOX_FORMATS[mtype]
        vc = vlm.config.vision_config
        self.merge_size = vc.spatial_merge_size
        self.image_processor = Qwen2VLImageProcessorPil(
            min_pixels=int(extra["min_pixels"]), max_pixels=int(extra["max_pixels"]), patch_size=vc.patch_size,
            temporal_patch_size=vc.temporal_patch_size, merge_size=vc.spatial_merge_size)
        self.image_token_id = vlm.config.image_token_id
        self._special = {t: self._token_id(t) for t in (
            "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|box_start|>", "<|box_end|>", "<|vision_pad|>")}
        if self._special["<|image_pad|>"] != self.image_token_id:
            raise ValueError(f"{source}: tokenizer's <|image_pad|> id differs from the config's image_token_id")
        self.pad_id = self._special["<|endoftext|>"]
        hidden = vlm.config.text_config.hidden_size
        if config.embed_dim and config.embed_dim != hidden:
            raise ValueError(f"config.embed_dim {config.embed_dim} != the backbone's hidden size {hidden}")
        config.embed_dim = hidden

        if extra.get("gradient_checkpointing"):
            vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            vlm.enable_input_require_grads()
        if extra.get("lora"):
            # the language model only; the vision tower keeps its pretrained weights
            vlm = lora.add_lora(vlm, extra["lora"], LLM_LINEAR, scope=".*language_model.*")
        self.backbone = vlm
        self.has_location_token = bool(extra.get("location_token"))
        if extra.get("location_token"):
            from geovec.models.towers import LocationTower, Projector

            self.location = LocationTower(config.location)
            self.location_proj = Projector(LocationTower.out_dim, hidden).to(_dtype(extra["dtype"]))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
        self.apply_trainable(config.trainable)
        self.to(self._initial_device(extra.get("device", "auto")))
        self.eval()

    # --- construction helpers --------------------------------------------------------------------------------
    @staticmethod
    def _initial_device(setting: str | None) -> torch.device:
        import os

        if setting in (None, "", "auto"):
            if torch.cuda.is_available():
                return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            return torch.device("cpu")
        return torch.device(setting)

    @staticmethod
    def _resolve_backbone(path: str | None, base_dir: str | Path | None) -> str:
        if not path:
            raise ValueError("the qwen2-vl architecture needs config.backbone_path (a local model directory)")
        p = Path(path)
        if not p.is_absolute() and base_dir is not None and (Path(base_dir) / p).exists():
            return str(Path(base_dir) / p)
        if p.exists():
            return str(p)
        if p.is_absolute() or str(path).startswith("."):
            raise FileNotFoundError(f"backbone directory {path} does not exist")
        return str(path)  # a hub name; resolves only where a hub (or its cache) is reachable

    def _token_id(self, token: str) -> int:
        i = self.tokenizer.convert_tokens_to_ids(token)
        if i is None or i == self.tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {token} token")
        return int(i)

    @property
    def core(self) -> nn.Module:
        """The Qwen2VLModel / Qwen2_5_VLModel (vision tower + language model), under any peft wrapper."""
        return lora.base_model(self.backbone).model

    # --- extension points (see geovec.models.base) ---------------------------------------------------------------
    # which parameters train: the base class's prefix / fnmatch rule over config.trainable. Cached tower outputs:
    # none (the VLM's vision tower runs inside its forward pass, so supports_image_features stays False and a
    # feature cache is refused, not skipped); text states are not cacheable (the LoRA adapters train).
    def frozen_modules(self) -> list[nn.Module]:
        return [self.location] if self.has_location_token else []

    # --- CPU-side preparation ---------------------------------------------------------------------------------
    def _ids(self, text: str, max_tokens: int | None = None) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[:max_tokens] if max_tokens else ids

    def box_text(self, box: Sequence[float], width: int, height: int, resized: tuple[int, int]) -> str:
        """Pixel xyxy on the given image -> the model's grounding tokens (see the module docstring)."""
        x1, y1, x2, y2 = box
        if self.box_format == "norm1000":
            sx, sy = 1000.0 / width, 1000.0 / height
            cap = 999  # Qwen2-VL's grid is [0, 1000)
        else:
            sx, sy = resized[0] / width, resized[1] / height
            cap = None
        vals = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        ints = [int(round(v)) for v in vals]
        if cap is not None:
            ints = [min(max(v, 0), cap) for v in ints]
        return f"<|box_start|>({ints[0]},{ints[1]}),({ints[2]},{ints[3]})<|box_end|>"

    def prepare(self, item: Item) -> PreparedQwen:
        sp = self._special
        cfg = self.config
        instruction = item.instruction or cfg.extra.get("system_default") or ""
        ids: list[int] = [sp["<|im_start|>"]] + self._ids("system\n")
        ids += self._ids(instruction, cfg.max_instruction_tokens)
        ids += [sp["<|im_end|>"]] + self._ids("\n") + [sp["<|im_start|>"]] + self._ids("user\n")
        prepared = PreparedQwen(input_ids=[], lat=item.lat, lon=item.lon)
        size = resized = None
        if item.image is not None:
            raster = read_image(item.image)
            size = (raster.width, raster.height)
            out = self.image_processor(images=[Image.fromarray(raster.pixels)], return_tensors="pt")
            prepared.pixel_values = out["pixel_values"]
            prepared.image_grid_thw = out["image_grid_thw"]
            t, h, w = (int(v) for v in out["image_grid_thw"][0])
            patch = self.image_processor.patch_size
            resized = (w * patch, h * patch)
        for m in item.order:
            if m == "image":
                t, h, w = (int(v) for v in prepared.image_grid_thw[0])
                n = t * h * w // self.merge_size**2
                ids += [sp["<|vision_start|>"]] + [sp["<|image_pad|>"]] * n + [sp["<|vision_end|>"]]
            elif m == "box":
                for box in item.boxes:
                    if box[2] > size[0] or box[3] > size[1]:
                        raise GeoVecInputError(f"box {list(box)} lies outside the {size[0]}x{size[1]} image")
                    ids += self._ids(self.box_text(box, size[0], size[1], resized))
            elif m == "location":
                ids += self._ids(f"latitude {item.lat:.4f}, longitude {item.lon:.4f}")
                if self.has_location_token:
                    ids.append(sp["<|vision_pad|>"])
            elif m == "text":
                ids += self._ids(item.text, cfg.max_text_tokens)
        ids += [sp["<|im_end|>"]] + self._ids("\n") + [sp["<|im_start|>"]] + self._ids("assistant\n")
        ids.append(sp["<|endoftext|>"])  # pooled token
        prepared.input_ids = ids
        return prepared

    def decode(self, prepared: PreparedQwen) -> str:
        """The sequence as text (image pads collapsed), for inspection."""
        text = self.tokenizer.decode(prepared.input_ids, skip_special_tokens=False)
        pad = "<|image_pad|>"
        while pad * 2 in text:
            text = text.replace(pad * 2, pad)
        return text

    # --- forward ---------------------------------------------------------------------------------------------
    def embed_prepared(self, prepared: Sequence[PreparedQwen]) -> torch.Tensor:
        if not prepared:
            raise GeoVecInputError("no items to embed (empty batch)")
        dev = self.device
        core = self.core
        T = max(len(p.input_ids) for p in prepared)
        B = len(prepared)
        ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        attn = torch.zeros(B, T, dtype=torch.long)
        for b, p in enumerate(prepared):  # left padding: the pooled token is always at position T - 1
            ids[b, T - len(p.input_ids):] = torch.tensor(p.input_ids)
            attn[b, T - len(p.input_ids):] = 1
        ids, attn = ids.to(dev), attn.to(dev)
        mm_types = (ids == self.image_token_id).int()
        images = [p for p in prepared if p.pixel_values is not None]
        pixel_values = grid = None
        if images:
            pixel_values = torch.cat([p.pixel_values for p in images]).to(dev)
            grid = torch.cat([p.image_grid_thw for p in images]).to(dev)
        embeds = core.get_input_embeddings()(ids)
        loc = [b for b, p in enumerate(prepared) if p.lat is not None]
        if self.has_location_token and loc:
            lat = torch.tensor([prepared[b].lat for b in loc], device=dev)
            lon = torch.tensor([prepared[b].lon for b in loc], device=dev)
            with torch.no_grad():
                z = self.location(lat, lon)
            tokens = self.location_proj(z.to(embeds.dtype)).squeeze(1)  # (n, d)
            slot = ids == self._special["<|vision_pad|>"]
            rows = slot[loc].nonzero()
            # one placeholder per located item (text never holds this special token)
            embeds = embeds.clone()
            embeds[torch.tensor(loc, device=dev)[rows[:, 0]], rows[:, 1]] = tokens[rows[:, 0]]
        position_ids, _ = core.get_rope_index(input_ids=ids, mm_token_type_ids=mm_types, image_grid_thw=grid,
                                              attention_mask=attn)
        out = core(input_ids=ids, inputs_embeds=embeds, attention_mask=attn, position_ids=position_ids,
                   pixel_values=pixel_values, image_grid_thw=grid, mm_token_type_ids=mm_types, use_cache=False)
        return pool(out.last_hidden_state, attn, "last").float()

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """``config.json`` + ``model.safetensors`` with the trained parameters (adapter, location projector).
        The base model is not copied: ``backbone_path`` must stay reachable (see :meth:`export_merged`)."""
        return save_trained(self, directory, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "Qwen2VLEmbedder":
        directory = Path(directory)
        config = GeoVecConfig.from_json(directory / "config.json")
        model = cls(config, base_dir=directory)
        load_trained(model, directory, required=False)  # a fresh adapter config may come without weights
        model.eval()
        return model

    def export_merged(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """A standalone checkpoint: the LoRA/DoRA adapter merged into the backbone's weights, written as a
        plain transformers model under ``directory/backbone`` (loadable without peft or geovec), plus the
        geovec config (``lora: null``) and the location projector. This model is left unchanged."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vlm = lora.merged(self.backbone)
        if dtype is not None:
            vlm = vlm.to(dtype)
        vlm.save_pretrained(directory / "backbone")
        self.tokenizer.save_pretrained(directory / "backbone")
        self.image_processor.save_pretrained(directory / "backbone")
        config = copy.deepcopy(self.config)
        config.backbone_path = "backbone"
        config.extra["lora"] = None
        config.trainable = [p for p in config.trainable if "lora" not in p]
        config.to_json(directory / "config.json")
        from safetensors.torch import save_file

        rest = {n: t.contiguous().cpu() for n, t in self.trainable_state_dict().items() if "lora_" not in n}
        rest = {n: (t.to(dtype) if dtype else t) for n, t in rest.items()}
        save_file(rest, str(directory / "model.safetensors"), metadata={"format": "pt", "geovec": config.name})
        return directory
