"""Search an index with one interleaved query (text, image, image region, place) or a stored chip (``like``), with
spatial pre-filters (``bbox``, ``within_km`` of ``near``) that LanceDB applies before the vector search.

Which side embeds the query: an image (or image + box) alone is embedded as the chips are, on the *document* side
with the index's task and instruction, so a chip's own pixels find it at rank 1; anything with text or a place
uses the model's *query* instruction (``region`` with a box, ``geo`` with a place, else ``retrieval``).
Units and result geometry (WGS84 degrees, ``bbox`` as ``(min_lon, min_lat, max_lon, max_lat)`` crossing the
antimeridian when ``min_lon > max_lon``, RFC 7946 GeoJSON) are described in docs/search.md.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime as DateTime  # the hit's field is named datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geovec.domain import EARTH_RADIUS_KM, LatLon, haversine_km
from geovec.index.store import ChipReader, IndexInfo

# ANN search settings (benchmarks/search_ann.py: at 100k synthetic vectors these lift recall@10 from ~0.77 to
# ~0.99 for a few ms): HNSW beam width, and re-ranking of refine_factor * k candidates with full vectors
# (the index stores scalar-quantised ones).
ANN_EF = 100
ANN_REFINE_FACTOR = 5
ANN_NPROBES = 20  # IVF partitions searched: LanceDB's default, given to both stores so they search alike
RESULT_COLUMNS = ["id", "path", "window_col", "window_row", "window_width", "window_height", "bands",
                  "min_lon", "min_lat", "max_lon", "max_lat", "centre_lat", "centre_lon", "footprint", "datetime",
                  "model_id", "_distance"]


@dataclass
class SearchQuery:
    text: str | None = None
    image: Any = None
    box: Sequence[float] | None = None
    near: LatLon | None = None  # a LatLon (a (lat, lon) pair is read as one), WGS84 degrees
    within_km: float | None = None
    bbox: tuple[float, float, float, float] | None = None  # (min_lon, min_lat, max_lon, max_lat)
    k: int = 10
    instruction: str | None = None
    exact: bool = False
    like: str | None = None  # a chip id of the index: its stored vector is the query

    def __post_init__(self):
        if self.near is not None and not isinstance(self.near, LatLon):
            try:
                self.near = LatLon.of(self.near)
            except (TypeError, ValueError, KeyError):
                pass  # validate() says what is wrong with it

    def validate(self) -> None:
        if self.like is not None:
            if not isinstance(self.like, str) or not self.like.strip():
                raise ValueError(f"like must be a chip id (a string), got {self.like!r}")
            given = [n for n in ("text", "image", "box", "instruction") if getattr(self, n) is not None]
            if given:
                raise ValueError(f"like searches with a stored chip's vector; it does not combine with "
                                 f"{', '.join(given)} (only with the filters bbox, near + within_km)")
        elif self.text is None and self.image is None and self.near is None:
            raise ValueError("a search needs a query: give text, an image, a place (near=(lat, lon)) or a chip id "
                             "(like=...)")
        if self.box is not None and self.image is None:
            raise ValueError("a box marks a region of the query image: give an image with it")
        if self.within_km is not None:
            if self.near is None:
                raise ValueError("within_km needs near=(lat, lon)")
            if not self.within_km > 0:
                raise ValueError(f"within_km must be > 0, got {self.within_km}")
        if self.near is not None:
            if not isinstance(self.near, LatLon) or not self.near.valid:
                raise ValueError(f"near must be (lat, lon) with lat in [-90, 90] and lon in [-180, 180], got {self.near}")
        if self.bbox is not None:
            x1, y1, x2, y2 = self.bbox
            if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
                raise ValueError(f"bbox must be min_lon,min_lat,max_lon,max_lat in degrees, got {self.bbox}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    @property
    def same_modality(self) -> bool:
        """An image (or image + box) and nothing else: embedded like the index's chips, on the document side."""
        return self.like is None and self.image is not None and self.text is None and self.near is None

    @property
    def side(self) -> str:
        """``"stored"`` (like), ``"document"`` (same modality as the chips) or ``"query"``."""
        return "stored" if self.like is not None else "document" if self.same_modality else "query"

    @property
    def task(self) -> str:
        if self.like is not None:
            return "like"
        if self.box is not None:
            return "region"
        if self.near is not None:
            return "geo"
        return "retrieval"

    def item(self) -> dict:
        """The one interleaved item this query embeds (image first, then region, place, text)."""
        d: dict = {}
        if self.image is not None:
            d["image"] = self.image
        if self.box is not None:
            d["box"] = [float(v) for v in self.box]
        if self.near is not None:
            d["lat"], d["lon"] = self.near.lat, self.near.lon
        if self.text is not None:
            d["text"] = self.text
        if self.instruction:
            d["instruction"] = self.instruction
        return d


@dataclass
class SearchHit:
    rank: int
    score: float  # cosine similarity of query and chip
    id: str
    path: str
    window: tuple[int, int, int, int]  # (col_off, row_off, width, height) pixels
    centre_lat: float | None
    centre_lon: float | None
    bbox: tuple[float, float, float, float] | None
    # closed counter-clockwise ring of (lon, lat); continuous across the antimeridian (longitudes pass 180 there)
    footprint: list[tuple[float, float]] | None
    datetime: DateTime | None = None
    distance_km: float | None = None
    extra: dict = field(default_factory=dict)
    # the footprint as RFC 7946 GeoJSON: a Polygon, or a MultiPolygon split at 180 degrees; lon in [-180, 180]
    geometry: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["datetime"] = self.datetime.isoformat() if self.datetime else None
        d.pop("extra")
        d.pop("geometry")
        return d


def swapped_near_warning(store, near: LatLon | Sequence[float], far_km: float = 500.0,
                         close_km: float = 100.0) -> str | None:
    """A warning when ``near`` (a :class:`~geovec.domain.LatLon`, or a (lat, lon) pair) looks swapped: it lies
    more than ``far_km`` from every indexed chip centre, while (lon, lat) lies within ``close_km`` of one (and is
    at least 10x closer). None otherwise, and for an index with no georeferenced chips."""
    lat, lon = LatLon.of(near)
    if abs(lon) > 90:  # swapped, the pair would not be a place at all
        return None
    t = store.column("centre_lat", "centre_lon", where="centre_lat IS NOT NULL")
    if not t.num_rows:
        return None
    clat = t["centre_lat"].to_numpy(zero_copy_only=False)
    clon = t["centre_lon"].to_numpy(zero_copy_only=False)
    as_given = float(haversine_km(lat, lon, clat, clon).min())
    swapped = float(haversine_km(lon, lat, clat, clon).min())
    if as_given > far_km and swapped <= close_km and swapped * 10 <= as_given:
        return (f"near=({lat:g}, {lon:g}) is {as_given:,.0f} km from the nearest indexed chip, but ({lon:g}, {lat:g}) "
                f"is {swapped:,.1f} km from one: places are LAT,LON (latitude first); did you swap them?")
    return None


def _lon_range_sql(col_min: str, col_max: str, west: float, east: float) -> str:
    """The lon interval [west, east] intersects a row's [col_min, col_max]; either may cross 180 degrees
    (west > east), the row's when a footprint is split at the antimeridian."""
    if col_min == col_max:  # a point
        if west <= east:
            return f"({col_max} >= {west!r} AND {col_min} <= {east!r})"
        return f"({col_max} >= {west!r} OR {col_min} <= {east!r})"
    if west <= east:
        plain = f"{col_max} >= {west!r} AND {col_min} <= {east!r}"
        across = f"{col_min} <= {east!r} OR {col_max} >= {west!r}"  # row = [col_min, 180] + [-180, col_max]
        return f"(({col_min} <= {col_max} AND {plain}) OR ({col_min} > {col_max} AND ({across})))"
    # the query crosses 180: a crossing row always meets it
    return f"({col_min} > {col_max} OR {col_max} >= {west!r} OR {col_min} <= {east!r})"


def prefilter_sql(query: SearchQuery) -> str | None:
    """The SQL ``where`` LanceDB evaluates before the vector search."""
    parts = []
    if query.bbox is not None:
        x1, y1, x2, y2 = (float(v) for v in query.bbox)
        parts.append(f"(max_lat >= {y1!r} AND min_lat <= {y2!r})")
        parts.append(_lon_range_sql("min_lon", "max_lon", x1, x2))
    if query.within_km is not None and query.near is not None:
        lat, lon = query.near.lat, query.near.lon
        dlat = math.degrees(query.within_km / EARTH_RADIUS_KM)
        parts.append(f"(centre_lat >= {max(-90.0, lat - dlat)!r} AND centre_lat <= {min(90.0, lat + dlat)!r})")
        coslat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
        dlon = math.degrees(query.within_km / (EARTH_RADIUS_KM * max(coslat, 1e-6)))
        if lat + dlat < 90 and lat - dlat > -90 and dlon < 180:
            west, east = lon - dlon, lon + dlon
            west = west + 360 if west < -180 else west
            east = east - 360 if east > 180 else east
            parts.append(_lon_range_sql("centre_lon", "centre_lon", west, east))
    return " AND ".join(parts) if parts else None


def _hit(rank: int, row: dict, query: SearchQuery) -> SearchHit:
    import shapely

    from geovec.inputs.footprint import continuous_ring

    fp = geometry = None
    if row.get("footprint") is not None:
        geom = shapely.from_wkb(row["footprint"])
        fp = continuous_ring(geom)
        geometry = shapely.geometry.mapping(geom)
    bbox = None if row.get("min_lon") is None else (row["min_lon"], row["min_lat"], row["max_lon"], row["max_lat"])
    dist = None
    if query.near is not None and row.get("centre_lat") is not None:
        dist = float(haversine_km(query.near.lat, query.near.lon, row["centre_lat"], row["centre_lon"]))
    dt = row.get("datetime")
    if dt is not None and hasattr(dt, "to_pydatetime"):
        dt = dt.to_pydatetime()
    return SearchHit(rank=rank, score=float(1.0 - row["_distance"]), id=row["id"], path=row["path"],
                     window=(row["window_col"], row["window_row"], row["window_width"], row["window_height"]),
                     centre_lat=row.get("centre_lat"), centre_lon=row.get("centre_lon"), bbox=bbox, footprint=fp,
                     datetime=dt, distance_km=dist, geometry=plain_geojson(geometry))


def search_vector(store: ChipReader, vector: np.ndarray, query: SearchQuery) -> list[SearchHit]:
    """Nearest chips to ``vector`` (cosine) that pass the query's pre-filters, best first."""
    if len(store) == 0:
        return []
    where = prefilter_sql(query)
    limit = query.k
    while True:
        rows = store.nearest(vector, RESULT_COLUMNS, limit, where, metric="cosine", exact=query.exact,
                             ef=max(ANN_EF, limit * ANN_REFINE_FACTOR),  # HNSW needs ef >= candidates
                             refine_factor=ANN_REFINE_FACTOR, nprobes=ANN_NPROBES).to_pylist()
        kept = rows
        if query.within_km is not None:
            kept = [r for r in rows if r["centre_lat"] is not None and
                    haversine_km(query.near[0], query.near[1], r["centre_lat"], r["centre_lon"]) <= query.within_km]
        # the SQL box is a superset of the circle: widen until k survive or the box is exhausted
        if len(kept) >= query.k or len(rows) < limit:
            break
        limit *= 4
    return [_hit(i + 1, r, query) for i, r in enumerate(kept[: query.k])]


def check_model(store: ChipReader, model) -> None:
    info = store.info
    if (model.model_id, model.revision, int(model.embed_dim)) != (info.model_id, info.revision, info.dimension):
        raise ValueError(f"index {store.path} holds vectors of {info.model_id}@{info.revision} (dim {info.dimension}); "
                         f"the query model is {model.model_id}@{model.revision} (dim {model.embed_dim}): "
                         "queries must be embedded by the model that built the index")


def _is_tiff_path(image) -> bool:
    from geovec.inputs.raster import TIFF_SUFFIXES

    return isinstance(image, (str, os.PathLike)) and Path(image).suffix.lower() in TIFF_SUFFIXES


def _query_bands(image, info: IndexInfo | None) -> tuple[int, ...] | None:
    """The index's ``bands`` for a GeoTIFF query image that has them (else None: the file's own RGB bands)."""
    if info is None or not info.bands or not _is_tiff_path(image):
        return None
    from geovec.inputs.policy import open_raster

    try:
        with open_raster(image) as ds:
            return tuple(info.bands) if ds.count >= max(info.bands) else None
    except Exception:  # unreadable: read_image reports it
        return None


def document_item(query: SearchQuery, info: IndexInfo | None = None) -> dict:
    """A same-modality query as the index embeds a chip: the image's pixels (its ``box`` cut out: a GeoTIFF
    through a windowed read with the index's bands, exactly as a chip is read), plus the centre of that window
    when the index embeds chip locations and the image is georeferenced."""
    from geovec.inputs import GeoVecInputError
    from geovec.inputs.raster import image_size, read_image, read_tiff

    bands = _query_bands(query.image, info)
    if query.box is None:
        raster = read_image(query.image, bands=bands)
    else:
        x1, y1, x2, y2 = (float(v) for v in query.box)
        c0, r0, c1, r1 = math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)
        w, h = image_size(query.image)
        if c0 < 0 or r0 < 0 or c1 > w or r1 > h or c1 <= c0 or r1 <= r0:
            raise GeoVecInputError(f"box {[x1, y1, x2, y2]} lies outside the {w}x{h} image (pixel xyxy, "
                                   "0 <= x <= width, 0 <= y <= height)")
        if _is_tiff_path(query.image):
            raster = read_tiff(query.image, bands=bands, window=(c0, r0, c1 - c0, r1 - r0))
        else:
            full = read_image(query.image, bands=bands)
            raster = full.__class__(np.ascontiguousarray(full.pixels[r0:r1, c0:c1]), None, full.source)
    item: dict = {"image": raster.pixels}
    if info is not None and info.with_location and raster.georef is not None:
        item.update(lat=raster.georef.centre_lat, lon=raster.georef.centre_lon)
    return item


def embed_query(model, query: SearchQuery, info: IndexInfo | None = None) -> np.ndarray:
    """The query's vector: same-modality queries (image, image + box) on the document side with the index's
    task (``info``; default retrieval), everything else on the query side (see the module docstring)."""
    query.validate()
    if query.like is not None:
        raise ValueError("a like query uses a stored vector, it is not embedded: use query_vector(store, ...)")
    if query.same_modality:
        task = info.task if info is not None else "retrieval"
        normalize = info.normalized if info is not None else True
        return model.encode_document([document_item(query, info)], task=task, instruction=query.instruction,
                                     normalize=normalize, show_progress_bar=False)[0]
    item = query.item()
    bands = _query_bands(query.image, info)
    if bands:
        item["bands"] = list(bands)
    return model.encode_query([item], task=query.task, show_progress_bar=False)[0]


def query_vector(store: ChipReader, model, query: SearchQuery) -> np.ndarray:
    """The vector ``query`` searches ``store`` with: the stored vector of chip ``like`` (no model needed), else
    ``query`` embedded by ``model`` (:func:`embed_query`, with the index's task and bands)."""
    query.validate()
    if query.like is not None:
        return store.vector(query.like)
    return embed_query(model, query, store.info)


def search(store: ChipReader, model, query: SearchQuery) -> list[SearchHit]:
    """Embed ``query`` with ``model`` (which must be the index's model) and search ``store``."""
    if query.like is None:
        check_model(store, model)
    return search_vector(store, query_vector(store, model, query), query)


# --- output ---------------------------------------------------------------------------------------------------
def plain_geojson(geometry: dict | None) -> dict | None:
    """shapely's ``mapping`` with lists for tuples (plain JSON)."""
    if geometry is None:
        return None

    def lists(v):
        return [lists(x) for x in v] if isinstance(v, (tuple, list)) else float(v)

    return {"type": geometry["type"], "coordinates": lists(geometry["coordinates"])}


def hits_to_geojson(hits: Sequence[SearchHit], query: SearchQuery | None = None) -> dict:
    """A GeoJSON FeatureCollection (RFC 7946): one feature per hit, best first, its geometry the chip footprint
    ((lon, lat), exteriors counter-clockwise): a Polygon, or a MultiPolygon split at the antimeridian."""
    from shapely.geometry import mapping

    from geovec.inputs.footprint import footprint_geometry

    features = []
    for h in hits:
        props = h.to_dict()
        props.pop("footprint")
        geometry = h.geometry
        if geometry is None and h.footprint:
            geometry = plain_geojson(mapping(footprint_geometry(h.footprint)))
        features.append({"type": "Feature", "id": h.id, "geometry": geometry, "properties": props})
    out: dict = {"type": "FeatureCollection", "features": features}
    if query is not None:
        # not asdict(): it would deep-copy the query image's pixels
        q = {f.name: getattr(query, f.name) for f in fields(query)}
        q = {k: (list(v) if isinstance(v, tuple) else v) for k, v in q.items() if v is not None and k != "image"}
        if query.image is not None:
            q["image"] = str(query.image) if isinstance(query.image, (str, bytes)) or hasattr(query.image, "__fspath__") else "<image>"
        out["query"] = q
    return out
