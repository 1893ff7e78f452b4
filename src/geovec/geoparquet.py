"""The one GeoParquet 1.1 writer of geovec: ``geovec embed`` and ``geovec index export`` both write through it.

Columns (:func:`row_schema`), the same in both files:

* ``id`` (string), ``geometry`` (WKB in EPSG:4326, x = lon in [-180, 180], y = lat: the image / chip footprint
  as a Polygon whose exterior ring is counter-clockwise, a MultiPolygon split at 180 degrees for a footprint
  that crosses the antimeridian (RFC 7946), or a Point for an item that has a place but no footprint; null
  when neither is known), ``bbox`` (the GeoParquet 1.1 covering struct ``xmin, ymin, xmax, ymax``: the
  geometry's planar bounds, so a split footprint's covering spans -180..180 and readers re-check the geometry);
* ``embedding`` (fixed-size float32 list), ``centre_lat`` / ``centre_lon`` (degrees), ``datetime``;
* provenance: ``source_path``, the pixel window ``window_col, window_row, window_width, window_height``,
  ``bands`` (1-based, comma-separated, null = the file's own RGB bands), ``model_id``, ``model_revision``;
* ``nodata_fraction``: the share of a chip's pixels that are nodata (``geovec index export``; null in
  ``geovec embed`` output).

The footer holds the standard ``geo`` key (version 1.1.0, primary column ``geometry``, encoding WKB, the
geometry types present, CRS as PROJJSON, bbox, covering, orientation) and a ``geovec`` key naming the model
(id, revision, dimension, normalisation, metric, task, instruction) and how the rows were made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

GEOPARQUET_VERSION = "1.1.0"
GEOVEC_KEY = b"geovec"
BBOX_TYPE = pa.struct([("xmin", pa.float64()), ("ymin", pa.float64()), ("xmax", pa.float64()), ("ymax", pa.float64())])


def row_schema(dim: int, metadata: dict | None = None) -> pa.Schema:
    """The columns of every GeoParquet file geovec writes (``metadata`` becomes the ``geovec`` footer key)."""
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("geometry", pa.binary()),
        pa.field("bbox", BBOX_TYPE),
        pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("centre_lat", pa.float64()),
        pa.field("centre_lon", pa.float64()),
        pa.field("datetime", pa.timestamp("us")),
        pa.field("source_path", pa.string()),
        pa.field("window_col", pa.int32()),
        pa.field("window_row", pa.int32()),
        pa.field("window_width", pa.int32()),
        pa.field("window_height", pa.int32()),
        pa.field("bands", pa.string()),
        pa.field("model_id", pa.string()),
        pa.field("model_revision", pa.string()),
        pa.field("nodata_fraction", pa.float32()),  # share of the chip's pixels that are nodata; null: not known
    ]
    meta = {GEOVEC_KEY: json.dumps(metadata).encode()} if metadata else None
    return pa.schema(fields, metadata=meta)


def with_row_columns(table: pa.Table, dim: int) -> pa.Table:
    """``table`` with exactly the :func:`row_schema` columns, in order; a column a file of an older geovec lacks
    (``nodata_fraction``) is added as nulls."""
    schema = row_schema(dim)
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names).cast(schema)


def geometry_of(footprint=None, lat: float | None = None, lon: float | None = None) -> tuple[bytes | None, dict | None]:
    """(WKB, bbox dict) of a row: the footprint ring of ``(lon, lat)`` pairs as a counter-clockwise Polygon (a
    MultiPolygon split at the antimeridian when it crosses 180 degrees), else the Point ``(lon, lat)``, else
    ``(None, None)``. The bbox is the geometry's planar bounds (a covering, as GeoParquet readers filter it)."""
    import shapely

    from geovec.inputs.footprint import footprint_geometry

    if footprint:
        geom = footprint_geometry(footprint)
    elif lat is not None and lon is not None:
        geom = shapely.Point(float(lon), float(lat))
    else:
        return None, None
    x0, y0, x1, y1 = geom.bounds
    return shapely.to_wkb(geom), {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}


def bbox_covering(wkb: pa.Array) -> pa.StructArray:
    """The ``bbox`` covering column of WKB geometries: planar bounds, null where the geometry is null."""
    import shapely

    values = wkb.to_numpy(zero_copy_only=False)
    valid = np.array([v is not None for v in values], bool)
    bounds = np.full((len(values), 4), np.nan)
    if valid.any():
        bounds[valid] = shapely.bounds(shapely.from_wkb(values[valid]))
    cols = [pa.array(bounds[:, i], pa.float64(), mask=~valid) for i in range(4)]
    return pa.StructArray.from_arrays(cols, names=["xmin", "ymin", "xmax", "ymax"], mask=pa.array(~valid))


def _counter_clockwise(wkb: pa.Array) -> pa.Array:
    """WKB polygons with counter-clockwise exteriors (RFC 7946, GeoParquet ``orientation``); other types kept."""
    import shapely

    values = wkb.to_numpy(zero_copy_only=False)
    mask = np.array([v is not None for v in values], bool)
    if not mask.any():
        return wkb
    geoms = shapely.from_wkb(values[mask])
    if hasattr(shapely, "orient_polygons"):  # shapely >= 2.1
        geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    else:
        from shapely.geometry.polygon import orient

        def ccw(g):
            if g.geom_type == "MultiPolygon":
                return shapely.MultiPolygon([orient(p, 1.0) for p in g.geoms])
            return orient(g, 1.0) if g.geom_type == "Polygon" else g

        geoms = np.array([ccw(g) for g in geoms], dtype=object)
    out = np.empty(len(values), dtype=object)
    out[mask] = shapely.to_wkb(geoms)
    return pa.array(out, pa.binary())


def _epsg4326_projjson() -> dict:
    from pyproj import CRS

    return CRS.from_epsg(4326).to_json_dict()


_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon",
               7: "GeometryCollection"}


def geo_metadata(table: pa.Table) -> dict:
    """The GeoParquet 1.1 ``geo`` footer for ``table``'s ``geometry`` column (types and bbox from the data)."""
    import shapely

    b = table["bbox"].combine_chunks() if table.num_rows else None
    bbox = None
    if b is not None and b.null_count < len(b):
        bbox = [pc.min(b.field("xmin")).as_py(), pc.min(b.field("ymin")).as_py(),
                pc.max(b.field("xmax")).as_py(), pc.max(b.field("ymax")).as_py()]
    wkb = [v for v in table["geometry"].to_pylist() if v is not None] if table.num_rows else []
    types = {int(t) for t in shapely.get_type_id(shapely.from_wkb(wkb))} if wkb else set()
    col = {
        "encoding": "WKB",
        "geometry_types": sorted(_TYPE_NAMES[t] for t in types),  # [] = not known (no geometry in the file)
        # EPSG:4326 as PROJJSON; GeoParquet stores WKB as (x, y) = (lon, lat) whatever the CRS axis order
        "crs": _epsg4326_projjson(),
        "orientation": "counterclockwise",
        "edges": "planar",
        "covering": {"bbox": {"xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
                              "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]}},
    }
    if bbox:
        col["bbox"] = bbox
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": col}}


def write_geoparquet(table: pa.Table, path: str | Path, geovec_meta: dict, row_group_size: int = 16_384) -> Path:
    """Write ``table`` (the :func:`row_schema` columns, any order of rows) to ``path`` as GeoParquet 1.1:
    polygons oriented counter-clockwise, the ``geo`` and ``geovec`` footers; atomically (a temporary file
    renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dim = table.schema.field("embedding").type.list_size
    table = with_row_columns(table, dim)
    geometry = _counter_clockwise(table["geometry"].combine_chunks())
    table = table.set_column(table.schema.get_field_index("geometry"), table.schema.field("geometry"), geometry)
    meta = {b"geo": json.dumps(geo_metadata(table)).encode(), GEOVEC_KEY: json.dumps(geovec_meta).encode()}
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd", write_statistics=True)
    tmp.replace(path)
    return path
