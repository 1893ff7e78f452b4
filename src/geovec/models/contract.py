"""The encode API every geovec model offers (``encode`` / ``encode_query`` / ``encode_document`` /
``encode_partial`` / ``similarity``, named instructions and prompts), without torch: the torch models
(:class:`~geovec.models.base.EmbeddingModel`) and the exported-graph runtime (:class:`~geovec.models.graph_model.
GraphModel`) share it. A class using it has ``config`` (a :class:`~geovec.models.config.GeoVecConfig`) and
implements :meth:`EncodeAPI.encode_resolved` (the embedding of already-instructed items), ``prepare``, and, where
it offers them, :meth:`EncodeAPI.as_tensors` and :meth:`EncodeAPI.move_to`.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Iterable, Sequence

import numpy as np

from geovec.inputs import GeoVecInputError, Item, parse_item, parse_items
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


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows as float32 scaled to unit length (an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


class EncodeAPI:
    """See the module docstring."""

    def encode_resolved(self, items: Sequence[Item], batch_size: int = 32, show_progress_bar: bool | None = None,
                        normalize: bool = True, num_workers: int | None = None,
                        errors: dict[int, GeoVecInputError] | None = None) -> np.ndarray:
        """(N, D) float32 embeddings of items whose instructions are resolved (:meth:`instructed`); with
        ``errors`` given, items that fail to prepare are recorded there and left as NaN rows."""
        raise NotImplementedError

    def as_tensors(self, out: np.ndarray, single: bool, stacked: bool):
        """``encode``'s result as one tensor (``stacked``) or a list of them."""
        raise NotImplementedError(f"{type(self).__name__} returns numpy arrays")

    def move_to(self, device) -> None:
        """Move the model to ``device`` (``encode(..., device=...)``)."""
        raise NotImplementedError(f"{type(self).__name__} runs where it was loaded")

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
        device: Any = None,
    ) -> Any:
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
        if device is not None:
            self.move_to(device)
        task, side, instruction = call_instruction(self, instruction, task, side, prompt_name, prompt)
        resolved = self.instructed(parse_items(items), task=task, side=side, instruction=instruction)
        out = self.encode_resolved(resolved, batch_size, show_progress_bar, normalize, num_workers)
        if convert_to_tensor or not convert_to_numpy:
            return self.as_tensors(out, single, stacked=convert_to_tensor)
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
            emb = self.encode_resolved(good, batch_size, show_progress_bar, normalize, num_workers, prep_errors)
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
        return l2_normalize(a) @ l2_normalize(b).T

    def prepare_at(self, item: Item, index: int) -> Any:
        """``prepare(item)``, its input errors naming the item's position ``index``."""
        try:
            return self.prepare(item)
        except GeoVecInputError as e:
            raise e.at(index) from None

    def prepare_batch(self, items: Sequence[Any], task: str | None = None, side: str = "query",
                      instruction: str | None = None) -> list[Any]:
        """Raw items parsed, instructed (:meth:`instructed`) and prepared, in order: the first half of
        :meth:`encode` for callers that run the forward pass themselves (:func:`~geovec.models.base.
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

