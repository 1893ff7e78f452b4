"""The one prepare-and-embed loop every caller goes through: ``encode``, ``encode_partial``, training's embedding
of items (:func:`geovec.train.prepare.embed_items`) and the sentence-transformers module
(:mod:`geovec.integrations.sentence_transformers`).

Items are prepared (decoded, resized, normalised) in a thread pool one window of ``PREPARE_WINDOW_BATCHES``
batches ahead of the forward pass (PIL and the backends release the GIL, so decoding overlaps the model); each
window is regrouped by the model's ``batch_key`` (image size) into batches, so a batch runs the vision tower once.
The loop needs no torch: the model runs each batch (``embed_rows``) inside its ``inference_scope``.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from geovec.inputs import GeoVecInputError, Item

PREPARE_WINDOW_BATCHES = 2  # items are decoded this many batches ahead, then regrouped by batch_key


def encode_items(model, items: Sequence[Item], batch_size: int = 32, show_progress_bar: bool | None = None,
                 normalize: bool = True, num_workers: int | None = None,
                 errors: dict[int, GeoVecInputError] | None = None, prepare: Callable[[Item], Any] | None = None,
                 embed: Callable | None = None, inference: bool = True) -> np.ndarray:
    """(N, D) float32 embeddings of already-instructed ``items`` (see the module docstring). With ``errors``
    given, items whose preparation fails are recorded there (index -> error) and left as NaN rows instead of
    raising. ``prepare(item)`` / ``embed(prepared)`` replace ``model.prepare`` / ``model.embed_prepared`` (training:
    its feature cache, its text-state cache); ``inference=False`` runs under ``no_grad`` instead of
    ``inference_mode`` (the results may later enter autograd)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    # images first, then by text length; windows of prepared items are regrouped by the model's key
    order = sorted(range(len(items)), key=lambda i: (items[i].image is None, len(items[i].text or "")))
    span = batch_size * PREPARE_WINDOW_BATCHES
    windows = [order[i : i + span] for i in range(0, len(order), span)]
    n_batches = sum(-(-len(w) // batch_size) for w in windows)
    if show_progress_bar is None:
        show_progress_bar = n_batches > 1 and sys.stderr.isatty()
    out = np.empty((len(items), model.embed_dim), dtype=np.float32)
    workers = num_workers or min(4, max(1, model.cpu_threads()))

    def prepare_at(i: int):
        if prepare is None:
            return model.prepare_at(items[i], i)
        try:
            return prepare(items[i])
        except GeoVecInputError as e:
            raise e.at(i) from None

    with model.inference_scope(inference), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geovec-prep") as pool:

        def submit(window: list[int]) -> list[Future]:
            return [pool.submit(prepare_at, i) for i in window]

        pending = submit(windows[0]) if windows else []
        progress = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(items), desc="encode", unit="item")
        for w, window in enumerate(windows):
            current = pending
            pending = submit(windows[w + 1]) if w + 1 < len(windows) else []  # overlap with forward
            prepared, kept = [], []
            t_wait = time.perf_counter()
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
            model.add_seconds("prepare", time.perf_counter() - t_wait)
            keys = [model.batch_key(p) for p in prepared]
            grouped = sorted(range(len(prepared)), key=lambda j: keys[j])
            for s in range(0, len(grouped), batch_size):
                chunk = grouped[s : s + batch_size]
                t_fwd = time.perf_counter()
                emb = model.embed_rows([prepared[j] for j in chunk], normalize, embed)
                model.add_seconds("forward", time.perf_counter() - t_fwd)
                out[[kept[j] for j in chunk]] = emb
            if progress is not None:
                progress.update(len(window))
        if progress is not None:
            progress.close()
    return out
