"""``geovec index export --geoparquet FILE``: the index as GeoParquet 1.1, rows in Hilbert order.

Columns (:func:`geovec.geoparquet.row_schema`, the same as ``geovec embed`` writes): ``id``, ``geometry``
(WKB Polygon, or MultiPolygon split at the antimeridian: the chip footprint in EPSG:4326, x = lon, y = lat,
counter-clockwise), ``bbox``
(the GeoParquet 1.1 covering struct ``xmin, ymin, xmax, ymax``), ``embedding`` (fixed-size float32 list),
``centre_lat`` / ``centre_lon``, ``datetime``, provenance (``source_path``, pixel window, bands,
``model_id``, ``model_revision``). The footer carries the standard ``geo`` key and a ``geovec`` key naming
the model id, revision, dimension, normalisation, metric and the instruction the chips were embedded with.
Rows are sorted along a Hilbert curve over the chip centres, so row groups are spatially compact and
bbox-filtered reads (DuckDB, GDAL, geopandas ``bbox=``) skip most of the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from geovec.geoparquet import bbox_covering, write_geoparquet
from geovec.index.store import ChipReader


def hilbert_index(x: np.ndarray, y: np.ndarray, order: int = 16) -> np.ndarray:
    """Hilbert curve distance of integer grid cells ``(x, y)`` in ``[0, 2**order)`` (vectorised xy2d)."""
    x = np.asarray(x, np.int64).copy()
    y = np.asarray(y, np.int64).copy()
    d = np.zeros_like(x)
    s = 1 << (order - 1)
    n = 1 << order
    while s > 0:
        rx = ((x & s) > 0).astype(np.int64)
        ry = ((y & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def hilbert_order(lon: np.ndarray, lat: np.ndarray, order: int = 16) -> np.ndarray:
    """Row permutation sorting points (degrees) along a Hilbert curve over their extent; rows without a
    position go last, in their original order."""
    lon = np.asarray(lon, np.float64)
    lat = np.asarray(lat, np.float64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    keys = np.full(lon.shape, np.iinfo(np.int64).max, np.int64)
    if ok.any():
        x0, x1 = lon[ok].min(), lon[ok].max()
        y0, y1 = lat[ok].min(), lat[ok].max()
        cells = (1 << order) - 1
        gx = np.round((lon[ok] - x0) / max(x1 - x0, 1e-12) * cells)
        gy = np.round((lat[ok] - y0) / max(y1 - y0, 1e-12) * cells)
        keys[ok] = hilbert_index(gx, gy, order)
    return np.argsort(keys, kind="stable")


def export_table(store: ChipReader) -> pa.Table:
    """The export rows (Hilbert-sorted) as an Arrow table, without the footer metadata."""
    t = store.to_arrow()
    order = hilbert_order(t["centre_lon"].to_numpy(zero_copy_only=False),
                          t["centre_lat"].to_numpy(zero_copy_only=False))
    t = t.take(pa.array(order))
    # the covering is the geometry's planar bounds (not the index's west/east columns, which wrap across 180)
    bbox = bbox_covering(t["footprint"].combine_chunks())
    info = store.info
    return pa.table({
        "id": t["id"],
        "geometry": t["footprint"],
        "bbox": bbox,
        "embedding": t["vector"],
        "centre_lat": t["centre_lat"],
        "centre_lon": t["centre_lon"],
        "datetime": t["datetime"],
        "source_path": t["path"],
        "window_col": t["window_col"],
        "window_row": t["window_row"],
        "window_width": t["window_width"],
        "window_height": t["window_height"],
        "bands": t["bands"],
        "model_id": t["model_id"],
        "model_revision": pa.array([info.revision] * t.num_rows, pa.string()),
        "nodata_fraction": t["nodata_fraction"] if "nodata_fraction" in t.column_names
        else pa.nulls(t.num_rows, pa.float32()),  # an index built before the column existed
    })


def export_geoparquet(store: ChipReader, path: str | Path, row_group_size: int = 16_384) -> Path:
    """Write the index at ``store`` to ``path`` as GeoParquet 1.1 (see module docstring), through the one
    writer geovec has (:func:`geovec.geoparquet.write_geoparquet`, also used by ``geovec embed``)."""
    info = store.info
    geovec_meta = {"model_id": info.model_id, "revision": info.revision, "dimension": info.dimension,
                   "normalized": info.normalized, "metric": info.metric, "task": info.task,
                   "instruction": info.instruction, "with_location": info.with_location,
                   "chip_size": info.chip_size, "chip_overlap": info.chip_overlap, "bands": info.bands,
                   "embedding_column": "embedding", "row_order": "hilbert(centre_lon, centre_lat)",
                   "written_by": "geovec index export"}
    return write_geoparquet(export_table(store), path, geovec_meta, row_group_size=row_group_size)


GEOJSON_PROPERTIES = ("path", "window_col", "window_row", "window_width", "window_height", "bands", "centre_lat",
                      "centre_lon", "datetime", "nodata_fraction", "model_id")


def export_geojson(store: ChipReader, path: str | Path, batch_rows: int = 8192) -> Path:
    """Write the index at ``store`` to ``path`` as one GeoJSON FeatureCollection (RFC 7946): a feature per chip
    (id = chip id), its footprint as geometry (a MultiPolygon split at 180 degrees where it crosses the
    antimeridian, longitudes in [-180, 180]) and its scalar columns as properties; no embeddings. Streamed in
    batches, written atomically."""
    import json

    import shapely

    from geovec.index.search import plain_geojson

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    have = set(store.column_names())
    cols = ["id", "footprint"] + [c for c in GEOJSON_PROPERTIES if c in have]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write('{"type": "FeatureCollection", "features": [')
        first = True
        for batch in store.batches(cols, batch_rows):
            for r in batch.to_pylist():
                wkb = r.pop("footprint")
                geometry = plain_geojson(shapely.geometry.mapping(shapely.from_wkb(wkb))) if wkb else None
                if r.get("datetime") is not None:
                    r["datetime"] = r["datetime"].isoformat()
                feature = {"type": "Feature", "id": r.pop("id"), "geometry": geometry, "properties": r}
                f.write(("\n" if first else ",\n") + json.dumps(feature))
                first = False
        f.write("\n]}\n")
    tmp.replace(path)
    return path
