"""Scale-out embedding on a Ray cluster: Ray Data ``map_batches`` with an actor pool (one model load per
actor) writing parquet shards, which the index (or ``geovec embed``) then ingests.

Two entry points:

* :func:`embed_chips_ray` - chips of ``geovec index build --ray``; each actor reads its chips' windows and
  embeds them with :func:`geovec.index.build.embed_chips`, the exact code of the single-process path.
* :func:`embed_items_ray` - generic items of ``geovec embed --ray`` (rows of ``id`` + item), embedded with
  ``model.encode``; returns the shard paths (columns ``id``, ``embedding``, ``error``).

Workers must see the same file paths as the driver (shared or identical file system) and have geovec
installed. ``address``: ``"local"`` starts (or reuses) a local Ray instance, anything else is passed to
``ray.init(address=...)`` (``"auto"``, ``"ray://head:10001"``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow.parquet as pq

from geovec.index.chips import Chip
from geovec.index.store import ChipStore, IndexInfo, chip_rows

log = logging.getLogger(__name__)
ModelFactory = Callable[[], Any]


def model_factory_for(model) -> ModelFactory:
    """Default actor factory: load the same named model (``geovec.load_model(model.model_id)``)."""
    import geovec

    return partial(geovec.load_model, model.model_id)


def actor_cpus(concurrency: int, requested: float | None) -> float:
    """CPUs per actor: as requested, else a share that leaves one CPU of the cluster for the read and
    write tasks (actors that take every CPU would starve them: the job would never finish)."""
    import ray

    if requested is not None:
        return requested
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.25, min(1.0, (total - 1.0) / max(1, concurrency)))


def init_ray(address: str | None = "local", num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address in (None, "", "local"):
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False)


# --- chips --------------------------------------------------------------------------------------------------
def _chip_to_row(c: Chip) -> dict:
    return {"path": c.path, "window": list(c.window), "bands": list(c.bands) if c.bands else None,
            "footprint": json.dumps(c.footprint) if c.footprint else None, "centre_lat": c.centre_lat,
            "centre_lon": c.centre_lon, "datetime": c.datetime.isoformat() if c.datetime else None,
            "file_sig": c.file_sig}


def _row_to_chip(r: dict) -> Chip:
    fp = r.get("footprint")
    dt = r.get("datetime")
    bands = r.get("bands")
    return Chip(path=r["path"], window=tuple(int(v) for v in r["window"]),
                bands=tuple(int(b) for b in bands) if bands is not None and len(bands) else None,
                footprint=tuple(tuple(p) for p in json.loads(fp)) if fp else None,
                centre_lat=None if r.get("centre_lat") is None or np.isnan(r["centre_lat"]) else float(r["centre_lat"]),
                centre_lon=None if r.get("centre_lon") is None or np.isnan(r["centre_lon"]) else float(r["centre_lon"]),
                datetime=datetime.fromisoformat(dt) if dt else None, file_sig=r["file_sig"])


class ChipEmbedder:
    """Ray actor: loads the model once, embeds batches of chip rows (pandas) -> rows + ``vector``/``error``."""

    def __init__(self, model_factory: ModelFactory, info: dict, batch_size: int = 32):
        self.model = model_factory()
        self.info = IndexInfo(**info)
        self.batch_size = batch_size

    def __call__(self, batch):
        from geovec.index.build import embed_chips

        rows = batch.to_dict("records")
        chips = [_row_to_chip(r) for r in rows]
        vectors, ok, failed = embed_chips(self.model, chips, self.info, self.batch_size)
        by_id = {c.id: v for c, v in zip(ok, vectors)}
        batch = batch.copy()
        batch["vector"] = [by_id[c.id].tolist() if c.id in by_id else None for c in chips]
        batch["error"] = [failed.get(c.id) for c in chips]
        return batch


def embed_chips_ray(chips: Sequence[Chip], model_factory: ModelFactory, shards_dir: str | Path, info: IndexInfo,
                    address: str | None = "local", batch_size: int = 32, concurrency: int = 2,
                    num_cpus_per_actor: float | None = None, num_gpus_per_actor: float = 0,
                    rows_per_task: int = 256) -> list[Path]:
    """Embed ``chips`` on Ray; writes parquet shards (chip columns, ``vector``, ``error``) to ``shards_dir``."""
    import ray.data

    init_ray(address)
    shards_dir = Path(shards_dir)
    shards_dir.mkdir(parents=True, exist_ok=True)
    rows = [_chip_to_row(c) for c in chips]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // rows_per_task)))
    ds = ds.map_batches(ChipEmbedder, fn_constructor_kwargs={"model_factory": model_factory, "info": asdict(info),
                                                             "batch_size": batch_size},
                        batch_size=rows_per_task, batch_format="pandas", concurrency=concurrency,
                        num_cpus=actor_cpus(concurrency, num_cpus_per_actor), num_gpus=num_gpus_per_actor)
    before = set(shards_dir.glob("*.parquet"))
    ds.write_parquet(str(shards_dir))
    return sorted(set(shards_dir.glob("*.parquet")) - before)


def ingest_shards(store: ChipStore) -> tuple[int, dict[str, str]]:
    """Append the chip shards in ``<db>/_shards`` to the store (skipping ids already there) and delete them.
    Returns (rows ingested, {chip id: problem} for chips the workers could not embed)."""
    shards = sorted((store.path / "_shards").glob("*.parquet"))
    if not shards:
        return 0, {}
    done = store.ids()
    ingested, failed = 0, {}
    for shard in shards:
        rows = pq.read_table(shard).to_pylist()
        chips, vectors = [], []
        for r in rows:
            chip = _row_to_chip(r)
            if r.get("error") or r.get("vector") is None:
                failed[chip.id] = r.get("error") or "no vector"
                continue
            if chip.id in done:
                continue
            done.add(chip.id)
            chips.append(chip)
            vectors.append(r["vector"])
        if chips:
            store.add(chip_rows(chips, np.asarray(vectors, np.float32), store.info.model_id))
            ingested += len(chips)
        shard.unlink()
    return ingested, failed


# --- generic items (geovec embed --ray) ------------------------------------------------------------------------
class ItemEmbedder:
    """Ray actor for generic items: rows ``id`` + ``item`` (JSON text of an item) -> ``embedding`` / ``error``."""

    def __init__(self, model_factory: ModelFactory, encode_kwargs: dict):
        self.model = model_factory()
        self.kwargs = encode_kwargs

    def __call__(self, batch: dict) -> dict:
        from geovec.inputs import GeoVecInputError

        items = [json.loads(s) for s in batch["item"]]
        dim = int(self.model.embed_dim)
        out = np.full((len(items), dim), np.nan, np.float32)
        errors: list[str | None] = [None] * len(items)
        kw = self.kwargs
        if kw.get("task") is None and hasattr(self.model, "encode_partial"):
            # the exact call of the single-process `geovec embed` job
            out, errs = self.model.encode_partial(items, instruction=kw.get("instruction"),
                                                  batch_size=kw.get("batch_size", 32), show_progress_bar=False,
                                                  normalize=kw.get("normalize", True))
            for i, msg in errs.items():
                errors[i] = msg.split(": ", 1)[-1]
            return {"id": np.asarray(batch["id"]), "embedding": list(out), "error": np.asarray(errors, dtype=object)}
        try:
            out[:] = self.model.encode(items, show_progress_bar=False, **self.kwargs)
        except GeoVecInputError:
            for i, it in enumerate(items):  # find the bad ones; embed the rest one by one
                try:
                    out[i] = self.model.encode([it], show_progress_bar=False, **self.kwargs)[0]
                except GeoVecInputError as e:
                    errors[i] = str(e.at(None)).removeprefix("item: ")
        return {"id": np.asarray(batch["id"]), "embedding": list(out), "error": np.asarray(errors, dtype=object)}


def embed_items_ray(rows: Sequence[dict], model_factory: ModelFactory, out_dir: str | Path,
                    address: str | None = "local", batch_size: int = 32, concurrency: int = 2,
                    instruction: str | None = None, task: str | None = None, side: str = "query",
                    normalize: bool = True, num_cpus_per_actor: float | None = None, num_gpus_per_actor: float = 0,
                    rows_per_task: int = 256) -> list[Path]:
    """Embed ``rows`` (each ``{"id": str, "item": <item as accepted by encode, JSON-serialisable: image as a
    path string>}``) on Ray with ``concurrency`` actors, each calling ``model_factory()`` once.

    Writes parquet shards to ``out_dir`` with columns ``id`` (string), ``embedding`` (list<float32>, NaN
    where failed) and ``error`` (string or null) and returns their paths. Embeddings equal
    ``model.encode(items, instruction=..., task=..., side=..., normalize=...)`` of the single-process path.
    """
    import ray.data

    init_ray(address)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [{"id": str(r["id"]), "item": json.dumps(r["item"])} for r in rows]
    ds = ray.data.from_items(records, override_num_blocks=max(1, -(-len(records) // rows_per_task)))
    kwargs = {"instruction": instruction, "task": task, "side": side, "normalize": normalize,
              "batch_size": batch_size}
    ds = ds.map_batches(ItemEmbedder, fn_constructor_kwargs={"model_factory": model_factory, "encode_kwargs": kwargs},
                        batch_size=rows_per_task, batch_format="numpy", concurrency=concurrency,
                        num_cpus=actor_cpus(concurrency, num_cpus_per_actor), num_gpus=num_gpus_per_actor)
    before = set(out_dir.glob("*.parquet"))
    ds.write_parquet(str(out_dir))
    return sorted(set(out_dir.glob("*.parquet")) - before)


def ray_encoder(model_factory: ModelFactory, work_dir: str | Path, dim: int, address: str | None = "local",
                concurrency: int = 2):
    """An :data:`geovec.embed.job.Encoder` that embeds on Ray via :func:`embed_items_ray`: same rows, NaN and a
    message for items that failed; its shards in ``work_dir`` are removed once read."""
    import shutil

    def encode(items: list, instruction: str | None, batch_size: int):
        rows = [{"id": str(i), "item": _jsonable(it)} for i, it in enumerate(items)]
        shards = embed_items_ray(rows, model_factory, work_dir, address=address, batch_size=batch_size,
                                 concurrency=concurrency, instruction=instruction)
        got = {row["id"]: row for s in shards for row in pq.read_table(s).to_pylist()}
        shutil.rmtree(work_dir, ignore_errors=True)
        emb = np.full((len(items), dim), np.nan, dtype=np.float32)
        errors: dict[int, str] = {}
        for i in range(len(items)):
            row = got.get(str(i))
            if row is None or row["error"]:
                errors[i] = row["error"] if row else "lost by the Ray job"
            else:
                emb[i] = row["embedding"]
        return emb, errors

    return encode


def embed_records_with_ray(records, out: str | Path, model: str | None = None, ray_address: str = "local",
                           batch_size: int = 32, instruction: str | None = None, task: str | None = None,
                           with_location: bool = False, concurrency: int = 2, resume: bool = True,
                           model_factory: ModelFactory | None = None, chunk_size: int = 4096):
    """``geovec embed --ray``: :class:`geovec.embed.EmbedJob` (same parquet, same resume rules) whose
    embedding runs on Ray, ``chunk_size`` records per Ray job. ``model`` is a name or checkpoint path that
    every actor loads (or ``model_factory``, a picklable zero-argument callable, instead). Returns the job's
    ``EmbedSummary``."""
    import geovec
    from geovec.embed.job import EmbedJob

    factory = model_factory or partial(geovec.load_model, model)
    m = factory()
    if task is not None:
        instruction = instruction or m.query_instruction(task)
    out = Path(out)
    encode = ray_encoder(factory, out.with_name(out.name + ".partial") / "ray", m.embed_dim, ray_address, concurrency)
    job = EmbedJob(m, out, batch_size=batch_size, chunk_size=chunk_size, instruction=instruction,
                   with_location=with_location, encode=encode, task=task)
    return job.run(records, resume=resume)


def _jsonable(item):
    """Items of `geovec embed` records as JSON (paths as strings)."""
    if isinstance(item, dict):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in item.items()}
    return str(item) if isinstance(item, Path) else item
