"""The one encode API every geovec model offers (``encode`` / ``encode_query`` / ``encode_document`` /
``similarity``), independent of the backbone behind it.

A concrete model implements two things:

* ``prepare(item) -> prepared``: CPU-side work for one item (decode, resize, normalise boxes). It runs in
  a thread pool, overlapping the model's forward pass on the previous batch, and raises
  :class:`~geovec.inputs.GeoVecInputError` for bad input.
* ``embed_prepared(list_of_prepared) -> Tensor (B, D)``: the forward pass (gradients allowed; training
  calls it directly), returning unnormalised embeddings.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from os import PathLike
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError, Item, parse_item, parse_items
from geovec.models.config import GeoVecConfig
from geovec.models.instructions import (
    DEFAULT_QUERY_INSTRUCTIONS,
    DOCUMENT_TEMPLATE,
    TASKS,
    check_task,
    document_instruction,
    fill_template,
)

_PROMPT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # "query", "passage": a prompt name, not a sentence


class EmbeddingModel(nn.Module):
    config: GeoVecConfig

    # --- to implement -------------------------------------------------------------------------------------
    def prepare(self, item: Item) -> Any:
        raise NotImplementedError

    def embed_prepared(self, prepared: Sequence[Any]) -> torch.Tensor:
        raise NotImplementedError

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
        return self.config.query_instructions.get(task) or DEFAULT_QUERY_INSTRUCTIONS[task]

    def document_instruction(self, task: str, item: Item) -> str:
        check_task(task)
        return self.config.document_instructions.get(task) or document_instruction(item.order)

    @property
    def prompts(self) -> dict[str, str]:
        """Named prompts, as sentence-transformers' ``prompt_name`` uses them: each task kind's query
        instruction (from the model config), ``query`` (the retrieval query instruction) and ``document``
        (the generic candidate instruction; ``{modalities}`` is filled per item). Extra names may be given in
        ``config.extra["prompts"]``."""
        named = {t: self.query_instruction(t) for t in TASKS}
        named["query"] = self.query_instruction("retrieval")
        named["document"] = self.config.document_instructions.get("retrieval") or DOCUMENT_TEMPLATE
        named.update(getattr(self.config, "extra", {}).get("prompts", {}))
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
        if task in ("query", "document"):  # sentence-transformers' task names are sides here
            side, task = task, "retrieval"
        if instruction is not None and prompt_name is None and prompt is None and isinstance(instruction, str) \
                and _PROMPT_NAME.match(instruction):
            prompt_name, instruction = instruction, None
        if prompt is not None:
            instruction = prompt
        elif prompt_name is not None:
            names = self.prompts
            if prompt_name not in names:
                raise ValueError(f"unknown prompt name {prompt_name!r}; this model's prompts are {sorted(names)} "
                                 "(a literal instruction is a sentence: pass it as prompt=... or instruction=...)")
            if prompt_name in ("query", "document"):
                side, task = prompt_name, task or "retrieval"
                if prompt_name in getattr(self.config, "extra", {}).get("prompts", {}):
                    instruction = names[prompt_name]
            elif prompt_name in TASKS:
                side, task = "query", prompt_name
            else:
                instruction = names[prompt_name]
        parsed = parse_items(items)
        if side not in ("query", "document"):
            raise ValueError("side must be 'query' or 'document'")
        resolved: list[Item] = []
        for it in parsed:
            instr = it.instruction or instruction
            if instr is None and task is not None:
                instr = self.query_instruction(task) if side == "query" else self.document_instruction(task, it)
            resolved.append(it.with_instruction(None if instr is None else fill_template(instr, it.order)))
        out = self._encode_items(resolved, batch_size, show_progress_bar, normalize, num_workers)
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
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Like :meth:`encode`, but a bad item does not stop the others: returns ``(embeddings, errors)``
        where ``errors`` maps item index -> message and those rows are NaN (never a silent zero vector).
        For batch jobs (``geovec embed``, indexing) that must report bad files by name and keep going."""
        errors: dict[int, str] = {}
        good: list[Item] = []
        positions: list[int] = []
        for i, raw in enumerate(items):
            try:
                it = parse_item(raw, i)
            except GeoVecInputError as e:
                errors[i] = str(e)
                continue
            good.append(it.with_instruction(it.instruction or instruction))
            positions.append(i)
        out = np.full((len(items), self.embed_dim), np.nan, dtype=np.float32)
        if good:
            prep_errors: dict[int, GeoVecInputError] = {}
            emb = self._encode_items(good, batch_size, show_progress_bar, normalize, num_workers, prep_errors)
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

    def _prepare_at(self, item: Item, index: int) -> Any:
        try:
            return self.prepare(item)
        except GeoVecInputError as e:
            raise e.at(index) from None

    def batch_key(self, prepared: Any) -> Any:
        """Sort key that groups prepared items into batches (equal keys side by side); models override it
        (the single encoder groups by image size). Default: keep the order."""
        return 0

    @property
    def backend(self) -> str:
        """The inference backend in use (``torch`` unless a model attaches another)."""
        return "torch"

    PREPARE_WINDOW_BATCHES = 2  # items are decoded this many batches ahead, then regrouped by batch_key

    def _encode_items(self, items: list[Item], batch_size, show_progress_bar, normalize, num_workers,
                      errors: dict[int, GeoVecInputError] | None = None) -> np.ndarray:
        """Batched, prefetching encode. With ``errors`` given, items whose preparation fails are recorded
        there (index -> error) and left as NaN rows instead of raising.

        Pipeline: items are prepared (decoded, resized, normalised) in a thread pool one window of
        ``PREPARE_WINDOW_BATCHES`` batches ahead of the forward pass (PIL and the backends release the GIL,
        so decoding overlaps the model); each window is regrouped by :meth:`batch_key` (image size) into
        batches, so a batch runs the vision tower once."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        # images first, then by text length; windows of prepared items are regrouped by the model's key
        order = sorted(range(len(items)), key=lambda i: (items[i].image is None, len(items[i].text or "")))
        span = batch_size * self.PREPARE_WINDOW_BATCHES
        windows = [order[i : i + span] for i in range(0, len(order), span)]
        n_batches = sum(-(-len(w) // batch_size) for w in windows)
        if show_progress_bar is None:
            show_progress_bar = n_batches > 1 and sys.stderr.isatty()
        out = np.empty((len(items), self.embed_dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        workers = num_workers or min(4, max(1, torch.get_num_threads()))
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geovec-prep") as pool:

                def submit(window: list[int]) -> list[Future]:
                    return [pool.submit(self._prepare_at, items[i], i) for i in window]

                pending = submit(windows[0]) if windows else []
                progress = None
                if show_progress_bar:
                    from tqdm.auto import tqdm

                    progress = tqdm(total=len(items), desc="encode", unit="item")
                for w, window in enumerate(windows):
                    current = pending
                    pending = submit(windows[w + 1]) if w + 1 < len(windows) else []  # overlap with forward
                    prepared, kept = [], []
                    for i, f in zip(window, current):
                        try:
                            prepared.append(f.result())
                            kept.append(i)
                        except GeoVecInputError as e:
                            if errors is None:
                                for g in pending:
                                    g.cancel()
                                raise
                            errors[i] = e
                            out[i] = np.nan
                    keys = [self.batch_key(p) for p in prepared]
                    grouped = sorted(range(len(prepared)), key=lambda j: keys[j])
                    for s in range(0, len(grouped), batch_size):
                        chunk = grouped[s : s + batch_size]
                        with torch.inference_mode():
                            emb = self.embed_prepared([prepared[j] for j in chunk]).float()
                            if normalize:
                                emb = F.normalize(emb, dim=-1)
                        out[[kept[j] for j in chunk]] = emb.cpu().numpy()
                    if progress is not None:
                        progress.update(len(window))
                if progress is not None:
                    progress.close()
        finally:
            self.train(was_training)
        return out
