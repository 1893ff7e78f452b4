"""The one encode API every geovec model offers (``encode`` / ``encode_query`` / ``encode_document`` /
``similarity``), independent of the backbone behind it.

A concrete model implements two things:

* ``prepare(item) -> prepared``: CPU-side work for one item (decode, resize, normalise boxes). It runs in
  a thread pool, overlapping the model's forward pass on the previous batch, and raises
  :class:`~geovec.inputs.GeoVecInputError` for bad input.
* ``embed_prepared(list_of_prepared) -> Tensor (B, D)``: the forward pass (gradients allowed; training
  calls it directly), returning unnormalised embeddings.

Extension points (defaults here; each architecture overrides what it supports, and callers use these, never
a model's attributes):

* instructions: :meth:`instructed` / :meth:`instruction_for` (the rule: :mod:`geovec.models.instructions`);
* which parameters train: :meth:`is_trainable_name`, :meth:`apply_trainable`, :meth:`trainable_state_dict`,
  :meth:`parameter_counts` (prefixes or fnmatch patterns over parameter names, ``config.trainable``),
  :attr:`pretrained_prefixes` (the pretrained weights, trained at the encoder learning rate) and
  :meth:`frozen_modules` (kept in eval mode while training);
* cached tower outputs: :attr:`supports_image_features`; :meth:`image_features` (the vision tower itself),
  :meth:`vision_features` (what the forward pass calls: a provider set with :meth:`using_image_features`, e.g.
  the benchmark's memo, else the tower), :meth:`prepare_with_features` and :meth:`image_features_signature`
  (training's on-disk cache), :attr:`image_tower_frozen`; :attr:`text_states_cacheable` (pooled text states
  may stand in for the encoder);
* per-stage timing: :attr:`stage_seconds` (seconds spent in ``prepare`` waits and forward passes by
  :meth:`encode`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from fnmatch import fnmatchcase
from os import PathLike
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError, Item
from geovec.models.config import GeoVecConfig
from geovec.models.encode_loop import encode_items
from geovec.models.lora import unwrapped_name
from geovec.models.contract import EncodeAPI


@contextmanager
def eval_mode(module: nn.Module):
    """``module`` and all its submodules in eval mode for the block, each one's own mode restored afterwards.
    Only the modules in training mode are touched: ``module.eval()`` walks every submodule (about 800 in
    geovec-compact, several milliseconds), which dominated the cost of encoding a single text."""
    training = [m for m in module.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield
    finally:
        for m in training:
            m.training = True


def embed_batch(model, prepared: Sequence[Any], normalize: bool = True, embed: Callable | None = None) -> torch.Tensor:
    """The forward pass of one batch of prepared items: ``model.embed_prepared`` (or ``embed``), in float32,
    L2-normalised with ``normalize``."""
    emb = (embed or model.embed_prepared)(list(prepared)).float()
    return F.normalize(emb, dim=-1) if normalize else emb


class EmbeddingModel(EncodeAPI, nn.Module):
    config: GeoVecConfig

    # --- to implement -------------------------------------------------------------------------------------
    def prepare(self, item: Item) -> Any:
        raise NotImplementedError

    def embed_prepared(self, prepared: Sequence[Any]) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, directory: str | PathLike) -> "EmbeddingModel":
        """The model of a checkpoint directory (``config.json`` + the trained weights; the pretrained rest is
        rebuilt from its packages)."""
        from pathlib import Path

        from geovec.models.checkpoint import load_trained

        directory = Path(directory)
        model = cls(GeoVecConfig.from_json(directory / "config.json"))
        load_trained(model, directory)
        model.source_dir = directory  # an ONNX export may sit beside the checkpoint, in <directory>/onnx
        return model.eval()

    # --- extension point: which parameters train --------------------------------------------------------------
    # parameter-name prefixes of pretrained weights (trained, if at all, at the encoder learning rate)
    pretrained_prefixes: tuple[str, ...] = ("backbone.", "vision.", "location.")

    def is_trainable_name(self, name: str) -> bool:
        """Whether parameter ``name`` trains under ``config.trainable`` (prefixes, or fnmatch patterns; a parameter
        under a LoRA wrapper also by the name the plain model gives it)."""
        names = {name, unwrapped_name(name)} if "base_model.model." in name or ".base_layer." in name else {name}
        return any(n == p or n.startswith(p) or fnmatchcase(n, p) for n in names for p in self.config.trainable)

    def apply_trainable(self, patterns: list[str]) -> None:
        """Train exactly the parameters matching ``patterns`` (kept in ``config.trainable``)."""
        self.config.trainable = list(patterns)
        self.mark_trainable()

    def mark_trainable(self) -> None:
        """``requires_grad`` of every parameter as ``config.trainable`` says (the config is left as it is)."""
        for name, p in self.named_parameters():
            p.requires_grad_(self.is_trainable_name(name))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained parameters: what a checkpoint holds (the pretrained rest is rebuilt on load)."""
        return {n: p.detach() for n, p in self.named_parameters() if self.is_trainable_name(n)}

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per top-level module, the trainable ones and the total."""
        groups: dict[str, int] = {}
        for n, p in self.named_parameters():
            key = n.split(".", 1)[0]
            groups[key] = groups.get(key, 0) + p.numel()
        groups["trainable"] = sum(p.numel() for n, p in self.named_parameters() if self.is_trainable_name(n))
        groups["total"] = sum(p.numel() for p in self.parameters())
        return groups

    def frozen_modules(self) -> list[nn.Module]:
        """Pretrained towers that stay in eval mode while training (their BatchNorm statistics must not move)."""
        return []

    def add_lora(self, settings) -> list[str]:
        """Add LoRA adapters (:mod:`geovec.models.lora` settings) to the model's transformer; returns the adapter
        parameter names. Saving (``save_pretrained``) merges them into the weights they adapt."""
        raise NotImplementedError(f"{type(self).__name__} takes no LoRA settings from a training config")

    # --- extension point: cached tower outputs -----------------------------------------------------------------
    supports_image_features = False  # the forward pass takes its feature maps from vision_features()
    text_states_cacheable = False  # pooled states of text-only items may stand in for the encoder (training)
    text_states_shareable = False  # ... and equal those of every model with the same pretrained backbone

    def image_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The vision tower's feature maps of prepared pixel tensors (models with ``supports_image_features``)."""
        raise NotImplementedError(f"{type(self).__name__} has no separable vision tower")

    def vision_features(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """What the forward pass calls for feature maps: the provider set by :meth:`using_image_features`, else
        :meth:`image_features`."""
        provider = self.__dict__.get("_image_feature_provider")
        return provider(pixels) if provider is not None else self.image_features(pixels)

    @contextmanager
    def using_image_features(self, provider):
        """While active, feature maps come from ``provider(pixels) -> list of maps`` (a memo that calls
        :meth:`image_features` for what it lacks). TypeError for a model without ``supports_image_features``."""
        if not self.supports_image_features:
            raise TypeError(f"{type(self).__name__} cannot take vision features from elsewhere")
        previous = self.__dict__.get("_image_feature_provider")
        self.__dict__["_image_feature_provider"] = provider
        try:
            yield self
        finally:
            self.__dict__["_image_feature_provider"] = previous

    @property
    def image_tower_frozen(self) -> bool:
        """Whether the vision tower's output depends on the image alone (nothing in it trains)."""
        return False

    def image_features_signature(self) -> str:
        """What a cached feature map depends on besides the image bytes (tower, resize rule)."""
        raise NotImplementedError(f"{type(self).__name__} has no separable vision tower")

    def prepare_with_features(self, item: Item, features: torch.Tensor, size: tuple[int, int]) -> Any:
        """``prepare(item)`` with a cached feature map of its image instead of decoding it; ``size`` is the
        image's (width, height) in pixels (its boxes are normalised by it)."""
        raise NotImplementedError(f"{type(self).__name__} has no separable vision tower")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @staticmethod
    def set_num_threads(n: int | None) -> None:
        """Intra-op CPU threads for torch (None leaves torch's default)."""
        if n:
            torch.set_num_threads(int(n))

    # --- the encode API's torch side (geovec.models.contract) -------------------------------------------------
    def encode_resolved(self, items: Sequence[Item], batch_size: int = 32, show_progress_bar: bool | None = None,
                        normalize: bool = True, num_workers: int | None = None,
                        errors: dict[int, GeoVecInputError] | None = None) -> np.ndarray:
        return encode_items(self, items, batch_size, show_progress_bar, normalize, num_workers, errors)

    def as_tensors(self, out: np.ndarray, single: bool, stacked: bool):
        if stacked:
            t = torch.from_numpy(out).to(self.device)
            return t[0] if single else t
        rows = [torch.from_numpy(r).to(self.device) for r in out]
        return rows[0] if single else rows

    def move_to(self, device) -> None:
        if torch.device(device) != self.device:
            self.to(device)

    @contextmanager
    def inference_scope(self, inference: bool = True):
        """What the encode loop runs its batches in: eval mode, and ``inference_mode`` (``no_grad`` without
        ``inference``: the results may later enter autograd)."""
        with ExitStack() as stack:
            stack.enter_context(eval_mode(self))
            stack.enter_context(torch.inference_mode() if inference else torch.no_grad())
            yield

    def embed_rows(self, prepared: Sequence[Any], normalize: bool = True, embed=None) -> np.ndarray:
        """One batch's embeddings as a float32 array (:func:`embed_batch`)."""
        return embed_batch(self, prepared, normalize, embed).cpu().numpy()

    @staticmethod
    def cpu_threads() -> int:
        return torch.get_num_threads()
