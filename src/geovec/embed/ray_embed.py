"""``geovec embed --ray``: the :class:`~geovec.embed.EmbedJob` (same GeoParquet, ids, resume rules and rows)
with its embedding run on a Ray cluster, ``chunk_size`` records per Ray job.

* :func:`embed_items_ray` - rows of ``id`` + item embedded by a pool of actors (one model load each); returns
  the parquet shards it wrote (columns ``id``, ``embedding``, ``error``, ``run``).
* :func:`ray_encoder` - an :data:`~geovec.embed.job.Encoder` over :func:`embed_items_ray`. Its shards live in
  ``<out>.partial/ray/`` until read: a rerun after an interruption takes the rows a killed Ray job had already
  written (same model, revision, task, side and instruction) instead of embedding them again; ``resume=False``
  removes them with the rest of ``<out>.partial/``.
* :func:`embed_records_with_ray` - the whole command.

Starting Ray and sizing the actor pool are :mod:`geovec.ray_support`'s.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geovec.ray_support import ModelFactory, map_to_shards

log = logging.getLogger(__name__)


def run_key(model, task: str | None, side: str, instruction: str | None) -> str:
    """What a Ray shard's embeddings depend on besides the item: rows of another run key are never reused."""
    return json.dumps([str(model.model_id), str(model.revision), task, side, instruction])


class ItemEmbedder:
    """Ray actor for generic items: rows ``id`` + ``item`` (JSON text of an item) -> ``embedding`` / ``error``."""

    def __init__(self, model_factory: ModelFactory, encode_kwargs: dict):
        self.model = model_factory()
        self.kwargs = encode_kwargs

    def __call__(self, batch: dict) -> dict:
        from geovec.inputs import GeoVecInputError

        items = [json.loads(s) for s in batch["item"]]
        kw = dict(self.kwargs)
        out = np.full((len(items), int(self.model.embed_dim)), np.nan, np.float32)
        errors: list[str | None] = [None] * len(items)
        encode_partial = getattr(self.model, "encode_partial", None)  # geovec models; else the bare encode contract
        if encode_partial is not None:  # the exact call of the single-process `geovec embed` job
            out, errs = encode_partial(items, show_progress_bar=False, **kw)
            for i, msg in errs.items():
                errors[i] = msg.split(": ", 1)[-1]
        else:
            try:
                out[:] = self.model.encode(items, show_progress_bar=False, **kw)
            except GeoVecInputError:
                for i, it in enumerate(items):  # find the bad ones; embed the rest one by one
                    try:
                        out[i] = self.model.encode([it], show_progress_bar=False, **kw)[0]
                    except GeoVecInputError as e:
                        errors[i] = str(e.at(None)).removeprefix("item: ")
        key = run_key(self.model, kw.get("task"), kw.get("side", "query"), kw.get("instruction"))
        return {"id": np.asarray(batch["id"]), "embedding": list(out), "error": np.asarray(errors, dtype=object),
                "run": np.asarray([key] * len(items), dtype=object)}


def embed_items_ray(rows: Sequence[dict], model_factory: ModelFactory, out_dir: str | Path,
                    address: str | None = "local", batch_size: int = 32, concurrency: int = 2,
                    instruction: str | None = None, task: str | None = None, side: str = "query",
                    normalize: bool = True, num_cpus_per_actor: float | None = None, num_gpus_per_actor: float = 0,
                    rows_per_task: int = 256) -> list[Path]:
    """Embed ``rows`` (each ``{"id": str, "item": <item as accepted by encode, JSON-serialisable: image as a
    path string>}``) on Ray with ``concurrency`` actors, each calling ``model_factory()`` once.

    Writes parquet shards to ``out_dir`` with columns ``id`` (string), ``embedding`` (list<float32>, NaN
    where failed), ``error`` (string or null) and ``run`` (:func:`run_key`) and returns their paths.
    Embeddings equal ``model.encode(items, instruction=..., task=..., side=..., normalize=...)`` of the
    single-process path.
    """
    records = [{"id": str(r["id"]), "item": json.dumps(_jsonable(r["item"]))} for r in rows]
    kwargs = {"instruction": instruction, "task": task, "side": side, "normalize": normalize,
              "batch_size": batch_size}
    return map_to_shards(records, ItemEmbedder, {"model_factory": model_factory, "encode_kwargs": kwargs}, out_dir,
                         batch_format="numpy", address=address, concurrency=concurrency,
                         num_cpus_per_actor=num_cpus_per_actor, num_gpus_per_actor=num_gpus_per_actor,
                         rows_per_task=rows_per_task)


def _finished_rows(work_dir: Path, key: str) -> tuple[dict[str, dict], list[Path]]:
    """Rows with an embedding that earlier (interrupted) Ray jobs of this run key left in ``work_dir``, and the
    shards read. A shard cut short by a kill is unreadable and skipped."""
    rows: dict[str, dict] = {}
    shards = sorted(work_dir.glob("*.parquet")) if work_dir.exists() else []
    for s in shards:
        try:
            table = pq.read_table(s)
        except (pa.ArrowException, OSError):
            continue
        if "run" not in table.column_names:
            continue
        for r in table.to_pylist():
            if r["run"] == key and not r["error"]:
                rows.setdefault(r["id"], r)
    return rows, shards


def ray_encoder(model_factory: ModelFactory, work_dir: str | Path, model, address: str | None = "local",
                concurrency: int = 2, task: str | None = None, side: str = "query", instruction: str | None = None,
                batch_size: int = 32):
    """An :data:`geovec.embed.job.Encoder` that embeds on Ray via :func:`embed_items_ray`: same rows, NaN and a
    message for items that failed. ``model`` (loaded in the driver) names the run: rows that an interrupted
    Ray job of the same model, revision, task, side and instruction left in ``work_dir`` are reused; shards
    are removed once read."""
    work_dir = Path(work_dir)
    key = run_key(model, task, side, instruction)
    dim = int(model.embed_dim)

    def encode(ids: list[str], items: list):
        done, old = _finished_rows(work_dir, key)
        todo = [(i, it) for i, it in zip(ids, items) if i not in done]
        if old and len(todo) < len(ids):
            log.info("reusing %d embedding(s) of an interrupted Ray job", len(ids) - len(todo))
        got = dict(done)
        new: list[Path] = []
        if todo:
            new = embed_items_ray([{"id": i, "item": it} for i, it in todo], model_factory, work_dir,
                                  address=address, batch_size=batch_size, concurrency=concurrency,
                                  instruction=instruction, task=task, side=side)
            got.update({row["id"]: row for s in new for row in pq.read_table(s).to_pylist()})
        emb = np.full((len(items), dim), np.nan, dtype=np.float32)
        errors: dict[int, str] = {}
        for j, rid in enumerate(ids):
            row = got.get(rid)
            if row is None or row["error"]:
                errors[j] = row["error"] if row else "lost by the Ray job"
            else:
                emb[j] = row["embedding"]
        for s in old + new:  # the job writes these rows in its own shard next; at most one chunk is at risk
            s.unlink(missing_ok=True)
        return emb, errors

    return encode


def embed_records_with_ray(records, out: str | Path, model: str | None = None, ray_address: str = "local",
                           batch_size: int = 32, instruction: str | None = None, task: str | None = None,
                           with_location: bool = False, concurrency: int = 2, resume: bool = True,
                           model_factory: ModelFactory | None = None, chunk_size: int = 4096, side: str = "query"):
    """``geovec embed --ray``: :class:`geovec.embed.EmbedJob` (same parquet, same resume rules) whose
    embedding runs on Ray, ``chunk_size`` records per Ray job. ``model`` is a name or checkpoint path that
    every actor loads (or ``model_factory``, a picklable zero-argument callable, instead). ``resume`` as in
    :meth:`EmbedJob.run`, for the Ray jobs' own shards too. Returns the job's ``EmbedSummary``."""
    import geovec
    from geovec.embed.job import EmbedJob

    factory = model_factory or partial(geovec.load_model, model)
    m = factory()
    out = Path(out)
    job = EmbedJob(m, out, batch_size=batch_size, chunk_size=chunk_size, instruction=instruction,
                   with_location=with_location, task=task, side=side)
    job.encode = ray_encoder(factory, job.partial / "ray", m, ray_address, concurrency, task=task, side=side,
                             instruction=instruction, batch_size=batch_size)
    return job.run(records, resume=resume)


def _jsonable(item):
    """Items of `geovec embed` records as JSON (paths as strings)."""
    if isinstance(item, dict):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in item.items()}
    return str(item) if isinstance(item, Path) else item
