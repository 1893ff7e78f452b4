"""``geovec index build --ray``: chips embedded on a Ray cluster (Ray Data ``map_batches`` with an actor pool,
one model load per actor) into parquet shards under ``<db>/_shards``, which the build then ingests.

Each actor reads its chips' windows and embeds them with :func:`geovec.index.embedding.embed_chips`, the exact
code of the single-process path, so the vectors are bit-identical. Starting Ray and the actor pool are
:mod:`geovec.ray_support`'s (shared with ``geovec embed --ray``, :mod:`geovec.embed.ray_embed`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow.parquet as pq

from geovec.index.chips import Chip
from geovec.index.embedding import embed_chips
from geovec.index.store import ChipStore, IndexInfo, chip_rows
from geovec.ray_support import ModelFactory, map_to_shards

log = logging.getLogger(__name__)


class ChipEmbedder:
    """Ray actor: loads the model once, embeds batches of chip rows (pandas) -> rows + ``vector``/``error``."""

    def __init__(self, model_factory: ModelFactory, info: dict, batch_size: int = 32):
        self.model = model_factory()
        self.info = IndexInfo(**info)
        self.batch_size = batch_size

    def __call__(self, batch):
        rows = batch.to_dict("records")
        chips = [Chip.from_row(r) for r in rows]
        vectors, read = embed_chips(self.model, chips, self.info, self.batch_size)
        by_id = {c.id: v for c, v in zip(read.ok, vectors)}
        nodata = dict(zip((c.id for c in read.ok), read.nodata))
        batch = batch.copy()
        batch["vector"] = [by_id[c.id].tolist() if c.id in by_id else None for c in chips]
        batch["nodata_fraction"] = [nodata.get(c.id) for c in chips]
        batch["error"] = [read.failed.get(c.id) for c in chips]
        return batch


def embed_chips_ray(chips: Sequence[Chip], model_factory: ModelFactory, shards_dir: str | Path, info: IndexInfo,
                    address: str | None = "local", batch_size: int = 32, concurrency: int = 2,
                    num_cpus_per_actor: float | None = None, num_gpus_per_actor: float = 0,
                    rows_per_task: int = 256) -> list[Path]:
    """Embed ``chips`` on Ray; writes parquet shards (chip columns, ``vector``, ``error``) to ``shards_dir``."""
    return map_to_shards([c.to_row() for c in chips], ChipEmbedder,
                         {"model_factory": model_factory, "info": asdict(info), "batch_size": batch_size},
                         shards_dir, batch_format="pandas", address=address, concurrency=concurrency,
                         num_cpus_per_actor=num_cpus_per_actor, num_gpus_per_actor=num_gpus_per_actor,
                         rows_per_task=rows_per_task)


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
        chips, vectors, nodata = [], [], []
        for r in rows:
            chip = Chip.from_row(r)
            if r.get("error") or r.get("vector") is None:
                failed[chip.id] = r.get("error") or "no vector"
                continue
            if chip.id in done:
                continue
            done.add(chip.id)
            chips.append(chip)
            vectors.append(r["vector"])
            nodata.append(r.get("nodata_fraction") or 0.0)
        if chips:
            store.add(chip_rows(chips, np.asarray(vectors, np.float32), store.info.model_id, nodata))
            ingested += len(chips)
        shard.unlink()
    return ingested, failed
