"""Chip embeddings in a local LanceDB directory (the embedded default store).

One table, ``chips``: a row per chip with its vector (cosine metric) and scalar columns for pre-filtering
(path, pixel window, footprint bbox, centre lat/lon, datetime, model id). The bbox columns ``min_lon``,
``min_lat``, ``max_lon``, ``max_lat`` are the footprint's west, south, east, north edges: ``min_lon >
max_lon`` for a chip that crosses the antimeridian (RFC 7946). What the vectors mean (model id,
revision, dimension, normalisation, instruction, chipping) is kept in ``geovec_index.json`` beside the
table, so a search always embeds its query with the same model the index was built with.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from geovec.index.chips import Chip

TABLE = "chips"
META_FILE = "geovec_index.json"
LOCK_FILE = ".geovec-write.lock"  # held by the one process writing to the index (write_lock)
ANN_MIN_ROWS = 5_000  # below this an exact scan is as fast as an index and always exact


@dataclass
class IndexInfo:
    """What the vectors in an index mean."""

    model_id: str
    revision: str
    dimension: int
    normalized: bool = True
    metric: str = "cosine"
    task: str = "retrieval"
    instruction: str | None = None
    with_location: bool = False
    chip_size: int = 256
    chip_overlap: int = 0
    bands: list[int] | None = None
    embed_size: int | None = None  # chips resized to this longer side before embedding (None: as cut)
    extra: dict = field(default_factory=dict)


def chip_schema(dim: int) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("window_col", pa.int32()),
        pa.field("window_row", pa.int32()),
        pa.field("window_width", pa.int32()),
        pa.field("window_height", pa.int32()),
        pa.field("bands", pa.string()),
        pa.field("min_lon", pa.float64()),
        pa.field("min_lat", pa.float64()),
        pa.field("max_lon", pa.float64()),
        pa.field("max_lat", pa.float64()),
        pa.field("centre_lat", pa.float64()),
        pa.field("centre_lon", pa.float64()),
        # WKB Polygon, or MultiPolygon split at the antimeridian; EPSG:4326, x = lon in [-180, 180], y = lat
        pa.field("footprint", pa.binary()),
        pa.field("datetime", pa.timestamp("us")),
        pa.field("model_id", pa.string()),
        pa.field("file_sig", pa.string()),
        # share of the chip's pixels that are nodata (declared value, alpha, mask, NaN), filled black
        pa.field("nodata_fraction", pa.float32()),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
    ])


def chip_rows(chips: Sequence[Chip], vectors: np.ndarray, model_id: str,
              nodata: Sequence[float] | None = None) -> pa.Table:
    """Arrow rows for ``chips``, their (N, D) float32 ``vectors`` and ``nodata`` fractions (default 0)."""
    import shapely

    from geovec.inputs.footprint import footprint_geometry

    dim = int(vectors.shape[1])
    polys = [footprint_geometry(c.footprint) if c.footprint else None for c in chips]
    wkb = [shapely.to_wkb(p) if p is not None else None for p in polys]
    bboxes = [c.bbox or (None, None, None, None) for c in chips]
    cols = {
        "id": [c.id for c in chips],
        "path": [c.path for c in chips],
        "window_col": [c.window[0] for c in chips],
        "window_row": [c.window[1] for c in chips],
        "window_width": [c.window[2] for c in chips],
        "window_height": [c.window[3] for c in chips],
        "bands": [",".join(map(str, c.bands)) if c.bands else None for c in chips],
        "min_lon": [b[0] for b in bboxes],
        "min_lat": [b[1] for b in bboxes],
        "max_lon": [b[2] for b in bboxes],
        "max_lat": [b[3] for b in bboxes],
        "centre_lat": [c.centre_lat for c in chips],
        "centre_lon": [c.centre_lon for c in chips],
        "footprint": wkb,
        "datetime": [c.datetime for c in chips],
        "model_id": [model_id] * len(chips),
        "file_sig": [c.file_sig for c in chips],
        "nodata_fraction": list(nodata) if nodata is not None else [0.0] * len(chips),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(vectors, np.float32).ravel()), dim),
    }
    return pa.table(cols, schema=chip_schema(dim))


class ChipNotFoundError(ValueError):
    """A chip id (``geovec search --like``, ``/search {"like": ...}``) that is not in the index."""

    def __init__(self, message: str, chip_id: str):
        super().__init__(message)
        self.chip_id = chip_id


class UnreadableIndexError(ValueError):
    """An index directory whose table is not a readable Lance dataset (damaged or foreign)."""


class IndexMismatchError(ValueError):
    """An existing index was built with another model or chipping than this build asks for."""


def is_vector_index(index_type: str) -> bool:
    """An ANN index type as LanceDB (``IvfHnswSq``) or Lance (``IVF_HNSW_SQ``) names it."""
    return str(index_type).upper().startswith(("IVF", "HNSW"))


class ChipReader:
    """The read operations of an index, on top of a few table primitives that :class:`ChipStore` (LanceDB,
    read-write) and :class:`ReadOnlyChipStore` (the Lance dataset alone) implement."""

    def __init__(self, db: str | Path):
        self.path = Path(db)
        meta = self.path / META_FILE
        if not meta.exists():
            raise FileNotFoundError(f"{self.path} is not a geovec index (no {META_FILE}); build one with "
                                    f"`geovec index build PATHS --db {self.path}`")
        self.info = IndexInfo(**json.loads(meta.read_text()))

    # --- table primitives -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def column_names(self) -> list[str]:
        raise NotImplementedError

    def scan(self, columns: Sequence[str] | None = None, where: str | None = None,
             limit: int | None = None) -> pa.Table:
        """Rows in table order: ``columns`` (None: all), those passing the SQL ``where``, at most ``limit``."""
        raise NotImplementedError

    def batches(self, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def nearest(self, vector: np.ndarray, columns: Sequence[str], k: int, where: str | None, *, metric: str,
                exact: bool, ef: int, refine_factor: int, nprobes: int) -> pa.Table:
        """The ``k`` rows nearest to ``vector`` by ``metric`` among those passing ``where`` (a pre-filter),
        nearest first, with a ``_distance`` column. ``exact``: a full scan, else the ANN index if there is one,
        searched with ``nprobes`` IVF partitions, HNSW beam ``ef`` and ``refine_factor`` re-ranking."""
        raise NotImplementedError

    def index_types(self) -> list[str]:
        raise NotImplementedError

    # --- contents ---------------------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        return self.scan()

    def column(self, *names: str, where: str | None = None) -> pa.Table:
        """Scalar columns (no vectors) of all rows, optionally filtered by a SQL ``where``."""
        return self.scan(list(names), where)

    def ids(self) -> set[str]:
        if len(self) == 0:
            return set()
        return set(self.column("id").column("id").to_pylist())

    def vector(self, chip_id: str) -> np.ndarray:
        """The stored vector of chip ``chip_id`` (``PATH#col,row,width,height``, as search results give it in
        ``id``). A file path of the index with exactly one chip names that chip too. Raises
        :class:`ChipNotFoundError` naming the id otherwise."""
        def lookup(where: str) -> pa.Table:
            return self.scan(["id", "vector"], where, limit=3)

        t = lookup("id = " + sql_str(chip_id)) if len(self) else None
        if t is not None and t.num_rows:
            return np.asarray(t["vector"][0].as_py(), np.float32)
        path = chip_id.split("#", 1)[0]
        candidates = [path]
        try:
            candidates.append(str(Path(path).resolve()))
        except (OSError, RuntimeError, ValueError):
            pass
        for p in dict.fromkeys(candidates):
            t = lookup("path = " + sql_str(p)) if len(self) else None
            if t is None or not t.num_rows:
                continue
            if t.num_rows == 1 and "#" not in chip_id:
                return np.asarray(t["vector"][0].as_py(), np.float32)
            n = len(self.column("id", where="path = " + sql_str(p)))
            raise ChipNotFoundError(f"no chip with id {chip_id!r} in index {self.path}; its file has {n} chip(s), "
                                    f"e.g. {t['id'][0].as_py()!r}", chip_id)
        raise ChipNotFoundError(f"no chip with id {chip_id!r} in index {self.path}: chip ids are "
                                "PATH#col,row,width,height, the 'id' of a search result (--format json)", chip_id)

    def file_signatures(self) -> dict[str, str]:
        """path -> file signature of the chips stored for it."""
        if len(self) == 0:
            return {}
        t = self.column("path", "file_sig")
        return dict(zip(t.column("path").to_pylist(), t.column("file_sig").to_pylist()))

    # --- integrity ----------------------------------------------------------------------------------------------
    def duplicate_ids(self) -> dict[str, int]:
        """{chip id: rows} for ids stored more than once (an index written by concurrent builds before
        writes were locked); empty for a sound index."""
        if len(self) == 0:
            return {}
        counts = self.column("id").group_by("id").aggregate([("id", "count")])
        dup = counts.filter(pa.compute.greater(counts["id_count"], 1))
        return dict(zip(dup["id"].to_pylist(), dup["id_count"].to_pylist()))

    def has_vector_index(self) -> bool:
        return any(is_vector_index(t) for t in self.index_types())


class ChipStore(ChipReader):
    """The LanceDB directory of an index, for reading and writing. Open an existing one with ``ChipStore(db)``;
    create with ``ChipStore.create(db, info)`` (or ``open_or_create``). Commands that only read open
    :class:`ReadOnlyChipStore` instead (no LanceDB import: ~2 s less start-up)."""

    def __init__(self, db: str | Path):
        super().__init__(db)
        import lancedb

        self.db = lancedb.connect(str(self.path))
        if TABLE in self.db.table_names():
            self.table = self.db.open_table(TABLE)
        else:
            self.table = self.db.create_table(TABLE, schema=chip_schema(self.info.dimension))

    @classmethod
    def create(cls, db: str | Path, info: IndexInfo) -> "ChipStore":
        path = Path(db)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        tmp.replace(path / META_FILE)  # atomic: a build killed here never leaves half a metadata file
        return cls(path)

    @classmethod
    def open_or_create(cls, db: str | Path, info: IndexInfo) -> "ChipStore":
        """Open ``db``; check that it was built with the same model and chipping, else refuse."""
        path = Path(db)
        if not (path / META_FILE).exists():
            return cls.create(path, info)
        store = cls(path)
        old = store.info
        for key in ("model_id", "revision", "dimension", "task", "instruction", "with_location", "embed_size"):
            if getattr(old, key) != getattr(info, key):
                raise IndexMismatchError(f"index {path} was built with {key}={getattr(old, key)!r}, this build uses "
                                 f"{getattr(info, key)!r}; use a new --db (vectors of different models do not mix)")
        return store

    # --- table primitives (LanceDB) -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.table.count_rows()

    def column_names(self) -> list[str]:
        return list(self.table.schema.names)

    def scan(self, columns: Sequence[str] | None = None, where: str | None = None,
             limit: int | None = None) -> pa.Table:
        if columns is None and where is None and limit is None:
            return self.table.to_arrow()
        q = self.table.search()
        if columns is not None:
            q = q.select(list(columns))
        if where:
            q = q.where(where)
        return q.limit(limit).to_arrow()

    def batches(self, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        return iter(self.table.search().select(list(columns)).limit(None).to_batches(batch_rows))

    def nearest(self, vector: np.ndarray, columns: Sequence[str], k: int, where: str | None, *, metric: str,
                exact: bool, ef: int, refine_factor: int, nprobes: int) -> pa.Table:
        q = (self.table.search(np.asarray(vector, np.float32), vector_column_name="vector")
             .distance_type(metric).select(list(columns)).limit(k))
        if where:
            q = q.where(where, prefilter=True)
        if exact:
            q = q.bypass_vector_index()
        else:
            q = q.nprobes(nprobes).ef(ef).refine_factor(refine_factor)
        return q.to_arrow()

    def index_types(self) -> list[str]:
        return [getattr(ix, "index_type", "") for ix in self.table.list_indices()]

    # --- writing ----------------------------------------------------------------------------------------------
    def delete_paths(self, paths: Sequence[str]) -> None:
        for p in paths:
            self.table.delete("path = " + sql_str(p))

    def add(self, rows: pa.Table) -> None:
        """Insert ``rows`` whose chip id is not in the table yet (an idempotent merge on ``id``: a chip is
        never stored twice, even by a writer that raced past the write lock)."""
        if not rows.num_rows:
            return
        have = set(self.table.schema.names)
        for name in rows.schema.names:
            if name not in have:  # an index built before this column existed
                sql_type = {pa.float32(): "FLOAT", pa.float64(): "DOUBLE"}.get(rows.schema.field(name).type)
                self.table.add_columns({name: f"CAST(NULL AS {sql_type or 'STRING'})"})
        self.table.merge_insert("id").when_not_matched_insert_all().execute(rows)

    def remove_duplicates(self, chunk: int = 500) -> int:
        """Keep the first-stored row of every duplicated chip id; returns the rows removed. Call under
        :func:`write_lock`. Each chunk of ids is one delete by LanceDB row id, a single commit: an interrupted
        repair leaves a sound index with fewer duplicates, never a chip without its row."""
        dups = list(self.duplicate_ids())
        removed = 0
        for i in range(0, len(dups), chunk):
            where = "id IN (" + ", ".join(sql_str(c) for c in dups[i : i + chunk]) + ")"
            rows = self.table.search().where(where).select(["id"]).with_row_id(True).limit(None).to_arrow()
            seen: set[str] = set()
            extra: list[int] = []
            for cid, rowid in sorted(zip(rows["id"].to_pylist(), rows["_rowid"].to_pylist()), key=lambda r: r[1]):
                if cid in seen:
                    extra.append(rowid)
                seen.add(cid)
            if extra:
                self.table.delete("_rowid IN (" + ", ".join(str(int(r)) for r in extra) + ")")
                removed += len(extra)
        return removed

    def ensure_indices(self, min_rows: int = ANN_MIN_ROWS, force: bool = False) -> bool:
        """Build the ANN index (IVF + HNSW, scalar-quantised; cosine) once the table is large enough, and
        BTREE indices on the pre-filter columns. Returns True when an ANN index exists afterwards."""
        n = len(self)
        if n == 0:
            return False
        for col in ("centre_lat", "centre_lon", "path"):
            self.table.create_scalar_index(col, replace=True)
        if n >= min_rows or force:
            partitions = max(1, int(round(np.sqrt(n) / 2)))
            # ef_construction / m / k-means iterations below LanceDB's defaults (300 / 20 / 50): the build is
            # ~3x cheaper on a CPU, and search re-ranks with full vectors (search.ANN_REFINE_FACTOR)
            self.table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ",
                                    num_partitions=partitions, m=16, ef_construction=100, max_iterations=20,
                                    replace=True)
            return True
        return self.has_vector_index()


class ReadOnlyChipStore(ChipReader):
    """An index opened for reading with the Lance dataset alone (``<db>/chips.lance``, its latest committed
    version at opening: a consistent snapshot while others write). LanceDB stores its tables as Lance datasets;
    reading them with ``lance`` skips importing LanceDB and its REST clients (~2 s of a command's start-up),
    and the queries below are the ones LanceDB hands to Lance (same pre-filter, metric, nprobes, ef and
    refinement), so results are identical. An index whose table was never written reads as empty."""

    def __init__(self, db: str | Path):
        super().__init__(db)
        uri = self.path / f"{TABLE}.lance"
        self.dataset = None
        if uri.exists():
            import lance

            try:
                self.dataset = lance.dataset(str(uri))
            except (OSError, ValueError) as e:
                reason = str(e).split(", /", 1)[0]  # Lance appends the Rust source locations
                raise UnreadableIndexError(f"{self.path} cannot be read as a geovec index: {uri.name} is not a "
                                           f"readable Lance dataset ({reason})") from None

    def __len__(self) -> int:
        return 0 if self.dataset is None else self.dataset.count_rows()

    def column_names(self) -> list[str]:
        schema = chip_schema(self.info.dimension) if self.dataset is None else self.dataset.schema
        return list(schema.names)

    def _empty(self, columns: Sequence[str] | None) -> pa.Table:
        schema = chip_schema(self.info.dimension)
        return schema.empty_table() if columns is None else schema.empty_table().select(list(columns))

    def scan(self, columns: Sequence[str] | None = None, where: str | None = None,
             limit: int | None = None) -> pa.Table:
        if self.dataset is None:
            return self._empty(columns)
        return self.dataset.to_table(columns=None if columns is None else list(columns), filter=where or None,
                                     limit=limit)

    def batches(self, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self.dataset is None:
            return iter(())
        return iter(self.dataset.to_batches(columns=list(columns), batch_size=batch_rows))

    def nearest(self, vector: np.ndarray, columns: Sequence[str], k: int, where: str | None, *, metric: str,
                exact: bool, ef: int, refine_factor: int, nprobes: int) -> pa.Table:
        if self.dataset is None:
            empty = self._empty([c for c in columns if c != "_distance"])
            return empty.append_column("_distance", pa.array([], pa.float32())) if "_distance" in columns else empty
        near = {"column": "vector", "q": np.asarray(vector, np.float32), "k": k, "metric": metric}
        if exact:
            near["use_index"] = False
        else:
            near.update(minimum_nprobes=nprobes, maximum_nprobes=nprobes, ef=ef, refine_factor=refine_factor)
        # LanceDB pre-filters by default (and its `where(..., prefilter=True)`): filter first, then the k nearest
        return self.dataset.to_table(columns=list(columns), filter=where or None, nearest=near, limit=k,
                                     prefilter=True)

    def index_types(self) -> list[str]:
        return [] if self.dataset is None else [ix.index_type for ix in self.dataset.describe_indices()]


class IndexLockedError(RuntimeError):
    """Another process is writing to the index and did not finish within the wait allowed."""


@contextmanager
def write_lock(db: str | Path, timeout: float | None = None, on_wait: Callable[[], None] | None = None):
    """Hold the index's write lock (a file lock in the index directory, created if missing) inside a ``with``
    block: one writer at a time, so concurrent builds into one index wait for each other and each sees the
    chips the other stored. ``timeout`` seconds to wait (None: as long as it takes; 0: do not wait);
    ``on_wait`` is called once when the lock is held by another process. Raises :class:`IndexLockedError`."""
    from filelock import FileLock, Timeout

    path = Path(db)
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait()
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise IndexLockedError(f"index {path} is being written by another process (waited {timeout:g} s); "
                                   "run again when it has finished") from None
    try:
        yield
    finally:
        lock.release()


def sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"
