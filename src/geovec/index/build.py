"""``geovec index build``: files -> chips -> embeddings -> LanceDB, in committed batches.

Resumable by construction: every batch of chips is appended to the table as soon as it is embedded, and a
run skips chip ids already in the table, so an interrupted build loses at most the batch in flight and never
embeds a chip twice. Files that changed since they were indexed (size / mtime) are re-chipped; files that
cannot be read (corrupt, decompression bombs, too large to decode whole) are reported by name and skipped,
the rest is indexed. Chips with no valid pixel (all nodata: the declared nodata value, alpha 0, masked, or
NaN) are counted and skipped, not embedded as black; a chip partly nodata is kept, with its nodata fraction.
One process writes to an index at a time (a file lock), and rows are merged on the chip id, so concurrent
builds into one index never store a chip twice.
Rerunning on a grown folder adds the new files only (incremental add); ``prune=True`` removes the chips of
indexed files that no longer exist.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from geovec.index.chips import Chip, ChipSpec, discover_files, iter_plans
from geovec.index.embedding import encode_chips, index_info, read_chips
from geovec.index.store import ANN_MIN_ROWS, ChipStore, chip_rows, write_lock
from geovec.inputs.scaling import NODATA_PROBLEM
from geovec.progress import Progress

log = logging.getLogger(__name__)

# chips per forward pass: the model's activations for 256-px chips weigh on peak memory, not on speed (a
# 10980-px tile with geovec-compact on onnxruntime: peak RSS 2.9 GB at 32, 2.1 GB at 8, both 9.6 chips/s in
# one run of benchmarks/index_tile.py, results/index_tile_run1.json)
BATCH_SIZE = 8


@dataclass
class BuildSummary:
    files: int = 0
    chips_total: int = 0
    chips_embedded: int = 0
    chips_skipped_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> problem
    chips_empty: int = 0  # chips with no valid pixel (all nodata / NaN): skipped, not embedded
    missing_files: list[str] = field(default_factory=list)  # indexed files that no longer exist
    pruned_files: int = 0  # of those, removed from the index (prune=True)
    pruned_chips: int = 0
    rows: int = 0
    ann_index: bool = False
    seconds: float = 0.0

    @property
    def chips_per_s(self) -> float:
        return self.chips_embedded / self.seconds if self.seconds > 0 else 0.0


def is_empty_chip(problem: str | None) -> bool:
    """Whether a chip's read problem is "no valid pixel" (all NaN / nodata): skipped, not a failure."""
    return bool(problem) and NODATA_PROBLEM in problem


def _record_failures(summary: BuildSummary, failed: dict[str, str]) -> None:
    for cid, problem in failed.items():
        if is_empty_chip(problem):
            summary.chips_empty += 1
        else:
            summary.failed.setdefault(cid.split("#")[0], problem)


def prune_missing(store: ChipStore, summary: BuildSummary, prune: bool) -> None:
    """Find indexed files that no longer exist; with ``prune``, delete their chips."""
    summary.missing_files = sorted(p for p in store.file_signatures() if not os.path.exists(p))
    if prune and summary.missing_files:
        before = len(store)
        store.delete_paths(summary.missing_files)
        summary.pruned_files, summary.pruned_chips = len(summary.missing_files), before - len(store)


def plan_build(paths: Sequence[str | os.PathLike], store: ChipStore, spec: ChipSpec,
               summary: BuildSummary) -> list[Chip]:
    """Chips still to embed: new files, changed files (their old chips are dropped), unfinished files."""
    files, missing = discover_files(paths)
    for p, why in missing:
        summary.failed[p] = why
    summary.files = len(files)
    done = store.ids()
    sigs = store.file_signatures()
    todo: list[Chip] = []
    changed: list[str] = []
    for f, chips, problem in iter_plans(files, spec):
        if chips is None:
            summary.failed[str(f)] = problem or "unreadable"
            continue
        summary.chips_total += len(chips)
        old_sig = sigs.get(str(f))
        if old_sig is not None and old_sig != chips[0].file_sig:
            changed.append(str(f))
            todo.extend(chips)
            continue
        for c in chips:
            if c.id in done:
                summary.chips_skipped_done += 1
            else:
                todo.append(c)
    if changed:
        log.info("re-indexing %d changed file(s)", len(changed))
        store.delete_paths(changed)
    return todo


def build_index(
    paths: Sequence[str | os.PathLike],
    db: str | Path,
    model,
    spec: ChipSpec = ChipSpec(),
    batch_size: int = BATCH_SIZE,
    commit_every: int = 256,
    task: str = "retrieval",
    with_location: bool = False,
    progress: bool | None = None,
    ann_min_rows: int = ANN_MIN_ROWS,
    ray_address: str | None = None,
    ray_options: dict | None = None,
    on_commit: Callable[[int], None] | None = None,
    prune: bool = False,
    lock_timeout: float | None = None,
    read_threads: int = 2,
) -> BuildSummary:
    """Index ``paths`` (files or folders) into the LanceDB directory ``db`` with ``model``.

    ``commit_every`` chips are embedded and appended per step (the most an interruption can lose); the next
    step's windows are read and decoded (``read_threads`` threads) while the model embeds this one.
    ``ray_address`` (``"auto"``, ``"local"`` or ``"ray://host:port"``) runs the embedding on a Ray cluster
    (:mod:`geovec.index.ray_runner`); the vectors are the same as the local path's. ``ray_options`` go to
    :func:`~geovec.index.ray_runner.embed_chips_ray` (``model_factory``: a picklable zero-argument callable
    loading the model in each actor, default ``geovec.load_model(model.model_id)``; ``concurrency``).
    ``prune`` deletes the chips of indexed files that no longer exist (they are listed in
    ``summary.missing_files`` either way). ``progress``: None or True shows progress on stderr (a bar on a
    terminal, else a line every few seconds), False nothing.

    One process writes to an index at a time (:func:`~geovec.index.store.write_lock`): a second build into the
    same ``db`` waits for the first (at most ``lock_timeout`` seconds, None = as long as it takes; then
    :class:`~geovec.index.store.IndexLockedError`) and skips the chips it stored.
    """
    import sys
    import time

    t0 = time.perf_counter()
    info = index_info(model, spec, task, with_location)
    summary = BuildSummary()
    bound_read_memory()
    show = progress is not False

    def waiting() -> None:
        if show:
            print(f"waiting: another process is writing to the index {db}; this build goes on when it has finished",
                  file=sys.stderr, flush=True)

    with write_lock(db, lock_timeout, on_wait=waiting):
        store = ChipStore.open_or_create(db, info)
        if ray_address is not None:
            from geovec.index.ray_runner import ingest_shards

            ingest_shards(store)  # shards a previous interrupted run wrote but did not ingest
        prune_missing(store, summary, prune)
        todo = plan_build(paths, store, spec, summary)
        if ray_address is not None and todo:
            from geovec.index.ray_runner import embed_chips_ray, ingest_shards
            from geovec.ray_support import model_factory_for

            opts = dict(ray_options or {})
            factory = opts.pop("model_factory", None) or model_factory_for(model.model_id)
            embed_chips_ray(todo, factory, store.path / "_shards", info, address=ray_address, batch_size=batch_size,
                            **opts)
            ingested, failed = ingest_shards(store)
            summary.chips_embedded += ingested
            _record_failures(summary, failed)
        elif todo:
            _embed_here(model, todo, store, info, summary, batch_size, commit_every, show, on_commit, read_threads)
        summary.rows = len(store)
        summary.ann_index = store.ensure_indices(min_rows=ann_min_rows)
    summary.seconds = time.perf_counter() - t0
    return summary


GDAL_CACHE_MB = 64  # GDAL's block cache for a build (its default is 5 % of RAM): a tile row of a 10980-px scene


def bound_read_memory() -> None:
    """GDAL caches at most :data:`GDAL_CACHE_MB` of decoded tiles during a build (unless ``$GDAL_CACHEMAX`` says
    otherwise; it takes effect where GDAL has not cached a block yet): enough for the tiles neighbouring chips
    share, not a growing share of RAM on a large scene."""
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


def _embed_here(model, todo: list[Chip], store: ChipStore, info, summary: BuildSummary, batch_size: int,
                commit_every: int, show: bool, on_commit, read_threads: int) -> None:
    """Embed ``todo`` in this process, one committed step of ``commit_every`` chips at a time; a reader thread
    decodes the next step while the model embeds the current one, so reading and embedding overlap."""
    from concurrent.futures import ThreadPoolExecutor

    steps = [todo[i : i + commit_every] for i in range(0, len(todo), commit_every)]
    # the same few threads for the whole build (new threads per step would each grow their own malloc arena)
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geovec-step")
    decoders = ThreadPoolExecutor(max_workers=max(1, read_threads), thread_name_prefix="geovec-read")
    try:
        with Progress(len(todo), "index", "chip", enabled=show) as bar:
            pending = reader.submit(read_chips, steps[0], info.embed_size, read_threads, decoders)
            for i in range(len(steps)):
                read = pending.result()
                if i + 1 < len(steps):
                    pending = reader.submit(read_chips, steps[i + 1], info.embed_size, read_threads, decoders)
                vectors = encode_chips(model, read, info, batch_size)
                store.add(chip_rows(read.ok, vectors, info.model_id, read.nodata))
                summary.chips_embedded += len(read.ok)
                _record_failures(summary, read.failed)
                bar.update(len(steps[i]))
                if on_commit is not None:
                    on_commit(summary.chips_embedded)
    finally:
        reader.shutdown(wait=False, cancel_futures=True)
        decoders.shutdown(wait=False, cancel_futures=True)
