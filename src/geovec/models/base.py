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

from contextlib import contextmanager
from fnmatch import fnmatchcase
from os import PathLike
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from geovec.inputs import GeoVecInputError, Item, parse_item, parse_items
from geovec.models.config import GeoVecConfig
from geovec.models.encode_loop import encode_items
from geovec.models.lora import unwrapped_name
from geovec.models.instructions import (
    DEFAULT_QUERY_INSTRUCTIONS,
    DOCUMENT_TEMPLATE,
    SIDES,
    TASKS,
    call_instruction,
    check_task,
    document_instruction,
    instructed,
    resolve_instruction,
)


class EmbeddingModel(nn.Module):
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

    # --- extension point: per-stage timing ---------------------------------------------------------------------
    @property
    def stage_seconds(self) -> dict[str, float]:
        """Seconds :meth:`encode` spent so far waiting for ``prepare`` (``prepare``) and in forward passes
        (``forward``), summed over every call on this model object."""
        return dict(self.__dict__.setdefault("_stage_seconds", {"prepare": 0.0, "forward": 0.0}))

    def add_seconds(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` spent in ``stage`` (``prepare`` or ``forward``; the encode loop calls this)."""
        spent = self.__dict__.setdefault("_stage_seconds", {"prepare": 0.0, "forward": 0.0})
        spent[stage] = spent.get(stage, 0.0) + seconds

    # --- identity -------------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.config.name

    @property
    def revision(self) -> str:
        return self.config.revision

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def get_sentence_embedding_dimension(self) -> int:
        """The embedding width (sentence-transformers' name for :attr:`embed_dim`)."""
        return int(self.embed_dim)

    get_embedding_dimension = get_sentence_embedding_dimension

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @staticmethod
    def set_num_threads(n: int | None) -> None:
        """Intra-op CPU threads for torch (None leaves torch's default)."""
        if n:
            torch.set_num_threads(int(n))

    # --- instructions ---------------------------------------------------------------------------------------
    def query_instruction(self, task: str) -> str:
        """The model's named query instruction for ``task`` (configs written before a task kind existed fall back
        to the default for that kind)."""
        task = check_task(task)
        return getattr(self.config, "query_instructions", {}).get(task) or DEFAULT_QUERY_INSTRUCTIONS[task]

    def document_instruction(self, task: str, item: Item) -> str:
        """The model's named candidate-side instruction for ``task`` (the generic one naming ``item``'s
        modalities unless the config overrides it)."""
        check_task(task)
        return getattr(self.config, "document_instructions", {}).get(task) or document_instruction(item.order)

    def instructed(self, items: Sequence[Item], task: str | None = None, side: str = "query",
                   instruction: str | None = None) -> list[Item]:
        """``items`` with the instructions this model embeds them with (the item's own, else ``instruction``,
        else the named one of ``task`` on ``side``): :func:`geovec.models.instructions.resolve_instruction`,
        the rule :meth:`encode` applies. For callers that must know the text (caches, training batches,
        the index's metadata); everything else passes ``task`` / ``side`` to ``encode``."""
        return instructed(items, task, side, instruction, self)

    def instruction_for(self, modalities: Sequence[str], task: str | None = None, side: str = "query",
                        instruction: str | None = None) -> str | None:
        """The instruction an item of these ``modalities`` (``("image", "location")``) gets: what an index
        or a job records as the meaning of its vectors."""
        return resolve_instruction(Item(order=tuple(modalities)), task, side, instruction, self)

    @property
    def prompts(self) -> dict[str, str]:
        """Named prompts, as sentence-transformers' ``prompt_name`` uses them: each task kind's query
        instruction (from the model config), ``query`` (the retrieval query instruction) and ``document``
        (the generic candidate instruction; ``{modalities}`` is filled per item). Extra names may be given in
        ``config.extra["prompts"]``."""
        named = {t: self.query_instruction(t) for t in TASKS}
        named["query"] = self.query_instruction("retrieval")
        named["document"] = getattr(self.config, "document_instructions", {}).get("retrieval") or DOCUMENT_TEMPLATE
        named.update((getattr(self.config, "extra", None) or {}).get("prompts", {}))
        return named

    # --- encode ---------------------------------------------------------------------------------------------
    def encode(
        self,
        items: Iterable[Any] | Any,
        instruction: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
        num_workers: int | None = None,
        *,
        task: str | None = None,
        side: str = "query",
        prompt_name: str | None = None,
        prompt: str | None = None,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
        """Embed interleaved items -> float32 array (N, D); a single item (not in a list) -> (D,).

        ``instruction`` applies to every item that has none of its own; with ``task`` (and ``side`` =
        ``"query"`` or ``"document"``) the model's named instruction for that task kind is used instead.
        Order and content of the batch do not change an item's embedding (within float tolerance).

        The sentence-transformers keywords work as there: ``prompt_name`` (a key of :attr:`prompts`: a task
        kind, ``"query"`` or ``"document"``), ``prompt`` (a literal instruction), ``normalize_embeddings``
        (same as ``normalize``), ``convert_to_tensor`` (one tensor), ``convert_to_numpy=False`` (a list of
        tensors) and ``device`` (moves the model there). A second positional argument that is a prompt name
        (``encode(x, "query")``) is used as ``prompt_name``; a one-word instruction that is no prompt name is
        an error, not an instruction.
        """
        single = self._is_single_input(items)
        if single:
            items = [items]
        elif isinstance(items, np.ndarray):
            items = items.tolist()
        if normalize_embeddings is not None:
            normalize = bool(normalize_embeddings)
        if device is not None and torch.device(device) != self.device:
            self.to(device)
        task, side, instruction = call_instruction(self, instruction, task, side, prompt_name, prompt)
        resolved = self.instructed(parse_items(items), task=task, side=side, instruction=instruction)
        out = encode_items(self, resolved, batch_size, show_progress_bar, normalize, num_workers)
        if convert_to_tensor:
            t = torch.from_numpy(out).to(self.device)
            return t[0] if single else t
        if not convert_to_numpy:
            rows = [torch.from_numpy(r).to(self.device) for r in out]
            return rows[0] if single else rows
        return out[0] if single else out

    @staticmethod
    def _is_single_input(items: Any) -> bool:
        """One item rather than a list of them: a string, a dict, an :class:`Item`, a path, a PIL image or an
        image array (an array of strings or objects is a list)."""
        if isinstance(items, np.ndarray):
            return items.dtype.kind not in ("U", "O")
        from PIL import Image

        return isinstance(items, (str, dict, Item, Image.Image, PathLike))

    def encode_partial(
        self, items: Sequence[Any], instruction: str | None = None, batch_size: int = 32,
        show_progress_bar: bool | None = None, normalize: bool = True, num_workers: int | None = None,
        *, task: str | None = None, side: str = "query",
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Like :meth:`encode`, but a bad item does not stop the others: returns ``(embeddings, errors)``
        where ``errors`` maps item index -> message and those rows are NaN (never a silent zero vector).
        For batch jobs (``geovec embed``, indexing) that must report bad files by name and keep going.
        ``instruction`` / ``task`` / ``side`` as in :meth:`encode`."""
        if side not in SIDES:
            raise ValueError("side must be 'query' or 'document'")
        errors: dict[int, str] = {}
        good: list[Item] = []
        positions: list[int] = []
        for i, raw in enumerate(items):
            try:
                it = parse_item(raw, i)
            except GeoVecInputError as e:
                errors[i] = str(e)
                continue
            good.append(it.with_instruction(resolve_instruction(it, task, side, instruction, self)))
            positions.append(i)
        out = np.full((len(items), self.embed_dim), np.nan, dtype=np.float32)
        if good:
            prep_errors: dict[int, GeoVecInputError] = {}
            emb = encode_items(self, good, batch_size, show_progress_bar, normalize, num_workers, prep_errors)
            for local, exc in prep_errors.items():
                errors[positions[local]] = str(exc.at(positions[local]))
            ok = [j for j in range(len(good)) if j not in prep_errors]
            out[[positions[j] for j in ok]] = emb[ok]
        return out, dict(sorted(errors.items()))

    def encode_query(self, items, task: str = "retrieval", instruction: str | None = None, **kwargs) -> np.ndarray:
        """Query side: the model's own instruction for ``task`` unless ``instruction`` overrides it."""
        return self.encode(items, instruction=instruction, task=check_task(task), side="query", **kwargs)

    def encode_document(self, items, task: str = "retrieval", instruction: str | None = None, **kwargs) -> np.ndarray:
        """Candidate side: a short generic instruction naming the item's modalities."""
        return self.encode(items, instruction=instruction, task=check_task(task), side="document", **kwargs)

    @staticmethod
    def similarity(a, b) -> np.ndarray:
        """Cosine similarity matrix (len(a), len(b)) of two embedding arrays."""
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        if b.ndim == 1:
            b = b[None]
        a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
        b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
        return a @ b.T

    def prepare_at(self, item: Item, index: int) -> Any:
        """``prepare(item)``, its input errors naming the item's position ``index``."""
        try:
            return self.prepare(item)
        except GeoVecInputError as e:
            raise e.at(index) from None

    def prepare_batch(self, items: Sequence[Any], task: str | None = None, side: str = "query",
                      instruction: str | None = None) -> list[Any]:
        """Raw items parsed, instructed (:meth:`instructed`) and prepared, in order: the first half of
        :meth:`encode` for callers that run the forward pass themselves (:func:`~geovec.models.encode_loop.
        embed_batch`), like the sentence-transformers module."""
        resolved = self.instructed(parse_items(items), task=task, side=side, instruction=instruction)
        return [self.prepare_at(item, i) for i, item in enumerate(resolved)]

    def batch_key(self, prepared: Any) -> Any:
        """Sort key that groups prepared items into batches (equal keys side by side); models override it
        (the single encoder groups by image size). Default: keep the order."""
        return 0

    @property
    def backend(self) -> str:
        """The inference backend in use (``torch`` unless a model attaches another)."""
        return "torch"
