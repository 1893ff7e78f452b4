"""The batch embedding job behind ``geovec embed``: records -> GeoParquet 1.1, resumable, bad files reported by name.

``<out>`` has the columns and footers of ``geovec index export`` (:mod:`geovec.geoparquet`, one writer for
both): ``geometry`` is the GeoTIFF's footprint (WKB Polygon, EPSG:4326), or the Point of an item's lat / lon,
or null; ``model_revision`` is on every row. Outputs of earlier versions (WKT ``footprint``, ``lat`` / ``lon``)
are upgraded when a rerun appends to them.

Work is written in shards to ``<out>.partial/`` as it completes; a rerun skips ids already in a shard or in
``<out>``, so an interrupted job (ctrl-c or kill -9, at any point) loses at most one chunk. When everything is
done the shards are merged into ``<out>`` and the partial folder is removed. Rows already in ``<out>`` are
always kept: a rerun with other inputs appends their rows after the earlier ones (``resume=False`` replaces
``<out>`` instead). Ids are unique in ``<out>``. Items that fail are retried on the next run (the user may have
fixed the file).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from geovec.embed.sources import Record, is_tiff
from geovec.geoparquet import GEOVEC_KEY, geometry_of, row_schema, with_row_columns, write_geoparquet
from geovec.progress import Progress
from geovec.inputs.bands import BandSelection
from geovec.inputs.georef import GeoRef, acquisition_datetime, georef_from
from geovec.inputs.policy import open_raster
from geovec.inputs.raster import image_size

METADATA_KEY = GEOVEC_KEY
# (record ids, items) -> (embeddings with NaN rows for failures, {index: message}); the job's task, side,
# instruction and batch size are the encoder's own (bound when it is made)
Encoder = Callable[[list, list], "tuple[np.ndarray, dict[int, str]]"]
_ITEM_PREFIX = re.compile(r"^item \d+(?: \([^)]*\))?: ")


def schema(dim: int, metadata: dict | None = None) -> pa.Schema:
    """The columns of ``--out`` and its shards: those of ``geovec index export`` (:func:`geovec.geoparquet.row_schema`)."""
    return row_schema(dim, metadata)


# the columns of outputs written before geovec embed wrote GeoParquet (id, source, embedding, lat, lon, WKT footprint)
_V0_COLUMNS = {"source", "lat", "lon", "footprint"}


def _upgrade(table: pa.Table, dim: int, revision: str | None) -> pa.Table:
    """An output / shard of an earlier geovec embed (WKT footprint, lat / lon) in today's columns, so a rerun
    onto it keeps its rows."""
    if "geometry" in table.column_names or not _V0_COLUMNS <= set(table.column_names):
        return table
    import shapely

    rows = []
    for r in table.to_pylist():
        fp = list(shapely.from_wkt(r["footprint"]).exterior.coords) if r.get("footprint") else None
        wkb, bbox = geometry_of(fp, r.get("lat"), r.get("lon"))
        rows.append({"id": r["id"], "geometry": wkb, "bbox": bbox, "embedding": r["embedding"],
                     "centre_lat": r.get("lat"), "centre_lon": r.get("lon"), "source_path": r.get("source"),
                     "model_id": r.get("model_id"), "model_revision": revision})
    return pa.Table.from_pylist(rows, schema=schema(dim))


class EmbedJobError(RuntimeError):
    """The job cannot run as asked (e.g. ``--out`` holds vectors of another model); nothing was written."""


@dataclass
class EmbedSummary:
    total: int = 0
    embedded: int = 0
    skipped_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # id -> problem
    out: Path | None = None
    kept_previous: int = 0  # rows of earlier runs in ``out`` for inputs not given this time (kept)
    rows: int = 0  # rows in ``out`` after the run

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Placed:
    """What the output row says about a record's image besides its embedding."""

    georef: GeoRef | None = None
    window: tuple[int, int, int, int] | None = None  # (0, 0, width, height): the whole image is embedded
    datetime: object = None
    path: str | None = None


def _image_path(image) -> str | None:
    if isinstance(image, BandSelection):
        image = image.source
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else None


def _place(record: Record, with_location: bool) -> tuple[object, _Placed]:
    """The item to embed and what is known of its image (footprint, size, date of a GeoTIFF), optionally
    embedding the image's centre as its location."""
    item, placed = record.item, _Placed()
    image = item.get("image") if isinstance(item, dict) else None
    placed.path = _image_path(image)
    if placed.path is not None:
        try:
            if is_tiff(placed.path):
                with open_raster(placed.path) as ds:
                    placed.georef = georef_from(ds.crs, ds.transform, ds.width, ds.height)
                    placed.window, placed.datetime = (0, 0, ds.width, ds.height), acquisition_datetime(ds.tags())
            else:
                w, h = image_size(placed.path)
                placed.window = (0, 0, int(w), int(h))
        except Exception:  # unreadable file: the encoder reports it with the item's name
            pass
    if with_location and placed.georef is not None:
        base = dict(item)
        if base.get("lat") is None:
            base["lat"], base["lon"] = placed.georef.centre_lat, placed.georef.centre_lon
        item = base
    return item, placed


def _bands_of(item) -> str | None:
    bands = item.get("bands") if isinstance(item, dict) else None
    return ",".join(str(int(b)) for b in bands) if bands else None


class EmbedJob:
    """Items are embedded with ``task`` on ``side`` (the model picks the instruction; ``instruction`` overrides
    it for items without their own). ``encode`` replaces the in-process ``model.encode_partial`` (e.g. by a Ray
    cluster, see :func:`geovec.embed.ray_embed.embed_records_with_ray`); everything else (ids, resume, rows)
    is the same."""

    def __init__(self, model, out: str | Path, batch_size: int = 32, chunk_size: int = 256,
                 instruction: str | None = None, with_location: bool = False, encode: Encoder | None = None,
                 task: str | None = None, side: str = "query"):
        self.model, self.out = model, Path(out)
        self.encode = encode or self._encode_here
        self.batch_size, self.chunk_size = batch_size, chunk_size
        self.instruction, self.task, self.side, self.with_location = instruction, task, side, with_location
        self.partial = self.out.with_name(self.out.name + ".partial")
        recorded = instruction
        if recorded is None and task is not None and side == "query":  # what a query-side item is embedded with
            recorded = model.instruction_for(("text",), task=task, side=side)
        self.metadata = {
            "model_id": model.model_id, "revision": model.revision, "dimension": int(model.embed_dim),
            "normalized": True, "metric": "cosine", "task": task, "instruction": recorded,
            "with_location": with_location, "embedding_column": "embedding", "row_order": "input",
            "written_by": "geovec embed",
        }

    def _encode_here(self, ids: list[str], items: list):
        return self.model.encode_partial(items, instruction=self.instruction, task=self.task, side=self.side,
                                         batch_size=self.batch_size, show_progress_bar=False)

    def _previous(self) -> list[Path]:
        """Finished work from earlier runs: the output of a finished one, then shards of an interrupted one."""
        prev = sorted(self.partial.glob("shard-*.parquet"))
        if self.out.exists():
            prev.insert(0, self.out)
        return prev

    def _done_ids(self) -> set[str]:
        done: set[str] = set()
        for s in self._previous():
            try:
                meta = pq.read_schema(s).metadata or {}
                prev = json.loads(meta.get(METADATA_KEY, b"{}"))
            except (pa.ArrowException, OSError, ValueError) as e:
                raise EmbedJobError(f"{s} is not a parquet file written by geovec embed ({e}); use another --out "
                                    "or remove it") from None
            if prev.get("model_id") != self.metadata["model_id"] or prev.get("revision") != self.metadata["revision"]:
                what = "holds vectors" if s == self.out else "holds an unfinished job"
                raise EmbedJobError(
                    f"{s} {what} of model {prev.get('model_id')}@{prev.get('revision')}, this run uses "
                    f"{self.metadata['model_id']}@{self.metadata['revision']}; use another --out, the same model, "
                    "or --no-resume to replace it"
                )
            done.update(pq.read_table(s, columns=["id"])["id"].to_pylist())
        return done

    def _next_shard(self) -> int:
        numbers = [int(p.stem.split("-")[1]) for p in self.partial.glob("shard-*.parquet")
                   if p.stem.split("-")[1].isdigit()]
        return max(numbers, default=-1) + 1  # never reuse a number: a half-removed folder may have gaps

    def _write_shard(self, n: int, rows: list[dict]) -> None:
        table = pa.Table.from_pylist(rows, schema=schema(self.model.embed_dim, self.metadata))
        tmp = self.partial / f".shard-{n:06d}.tmp"
        pq.write_table(table, tmp)
        tmp.rename(self.partial / f"shard-{n:06d}.parquet")  # atomic: a crash never leaves half a shard

    def run(self, records: Iterable[Record], progress: bool = True, resume: bool = True) -> EmbedSummary:
        """Embed every record not already done; ``resume=False`` starts over."""
        records = list(records)
        summary = EmbedSummary(total=len(records), out=self.out)
        if not resume:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.out.unlink(missing_ok=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        for stale in self.partial.glob(".shard-*.tmp"):  # a shard being written when the last run was killed
            stale.unlink(missing_ok=True)
        done = self._done_ids()
        n_shards = self._next_shard()
        seen: set[str] = set()
        todo = []
        for r in records:
            if r.id in seen:
                summary.failed[r.id + " (repeated)"] = f"id {r.id!r} repeats an earlier record; ids must be unique"
            elif r.problem:
                summary.failed[r.id] = r.problem
            elif r.id in done:
                summary.skipped_done += 1
            else:
                todo.append(r)
            seen.add(r.id)
        bar = Progress(len(records), "embed", "item", enabled=progress, initial=summary.skipped_done)
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            runnable = chunk
            placed = [_place(r, self.with_location) for r in runnable]
            rows = []
            if runnable:
                emb, errors = self.encode([r.id for r in runnable], [p[0] for p in placed])
                for j, (r, (item, at)) in enumerate(zip(runnable, placed)):
                    if j in errors:
                        summary.failed[r.id] = _ITEM_PREFIX.sub("", errors[j])
                        continue
                    rows.append(self._row(r, item, at, emb[j]))
            if rows:
                self._write_shard(n_shards, rows)
                n_shards += 1
                summary.embedded += len(rows)
            bar.update(len(chunk))
        bar.close()
        summary.rows, summary.kept_previous = self._merge(records)
        return summary

    def _row(self, r: Record, item, at: _Placed, vector: np.ndarray) -> dict:
        """One output row: the columns of ``geovec index export`` for an embedded record."""
        lat = lon = None
        if isinstance(item, dict) and item.get("lat") is not None:
            lat, lon = float(item["lat"]), float(item["lon"])
        elif at.georef is not None:
            lat, lon = at.georef.centre_lat, at.georef.centre_lon
        wkb, bbox = geometry_of(at.georef.footprint if at.georef else None, lat, lon)
        c, w = (at.window[0], at.window[2]) if at.window else (None, None)
        row_, h = (at.window[1], at.window[3]) if at.window else (None, None)
        return {"id": r.id, "geometry": wkb, "bbox": bbox, "embedding": vector.tolist(), "centre_lat": lat,
                "centre_lon": lon, "datetime": at.datetime, "source_path": at.path or r.source, "window_col": c,
                "window_row": row_, "window_width": w, "window_height": h, "bands": _bands_of(item),
                "model_id": self.model.model_id, "model_revision": self.model.revision}

    def _merge(self, records: list[Record]) -> tuple[int, int]:
        """Earlier ``out`` rows (all kept, in their order), then the new rows in input order; one row per id.
        Returns (rows written, rows kept for inputs not given this time)."""
        sch = schema(self.model.embed_dim, self.metadata)
        previous = self._previous()
        tables = [with_row_columns(_upgrade(pq.read_table(s), self.model.embed_dim, self.model.revision),
                                   self.model.embed_dim).replace_schema_metadata(sch.metadata)
                  for s in previous]
        n_out = tables[0].num_rows if previous and previous[0] == self.out else 0
        table = pa.concat_tables(tables) if tables else sch.empty_table()
        kept = 0
        if len(table):
            ids = table["id"].to_pylist()
            first: dict[str, int] = {}
            for i, rid in enumerate(ids):
                first.setdefault(rid, i)  # a kill after writing out but before removing the shards: no twins
            rank = {r.id: i for i, r in enumerate(records)}
            keep = sorted(first.values(), key=lambda i: (0, i) if i < n_out else (1, rank.get(ids[i], len(rank)), i))
            table = table.take(pa.array(keep, pa.int64()))
            kept = sum(1 for i in keep if ids[i] not in rank)
        if table.num_rows or self.out.exists():  # nothing embedded and nothing before: no empty file
            write_geoparquet(table, self.out, self.metadata)  # the writer of `geovec index export` too
        shutil.rmtree(self.partial, ignore_errors=True)
        return table.num_rows, kept
