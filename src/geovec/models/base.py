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

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError, Item, parse_item, parse_items
from geovec.models.config import GeoVecConfig
from geovec.models.instructions import DEFAULT_QUERY_INSTRUCTIONS, check_task, document_instruction


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

    # --- encode ---------------------------------------------------------------------------------------------
    def encode(
        self,
        items: Iterable[Any],
        instruction: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
        num_workers: int | None = None,
        *,
        task: str | None = None,
        side: str = "query",
    ) -> np.ndarray:
        """Embed interleaved items -> float32 array (N, D).

        ``instruction`` applies to every item that has none of its own; with ``task`` (and ``side`` =
        ``"query"`` or ``"document"``) the model's named instruction for that task kind is used instead.
        Order and content of the batch do not change an item's embedding (within float tolerance).
        """
        parsed = parse_items(items)
        if side not in ("query", "document"):
            raise ValueError("side must be 'query' or 'document'")
        resolved: list[Item] = []
        for it in parsed:
            instr = it.instruction or instruction
            if instr is None and task is not None:
                instr = self.query_instruction(task) if side == "query" else self.document_instruction(task, it)
            resolved.append(it.with_instruction(instr))
        return self._encode_items(resolved, batch_size, show_progress_bar, normalize, num_workers)

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
