"""Footprints on the globe: image and chip outlines as valid EPSG:4326 geometries (RFC 7946).

A footprint ring is the reprojected edge of a pixel grid, ``(lon, lat)`` pairs. Near the antimeridian its
longitudes jump from about +180 to -180 (a UTM zone 1 or 60 scene) or run past 180 (an EPSG:4326 raster whose
grid goes from 179.5 to 180.5 degrees). Read as a planar polygon such a ring spans the whole world and is
invalid. :func:`footprint_geometry` splits it at 180 degrees into a MultiPolygon (the ``antimeridian``
package), every longitude within [-180, 180], exteriors counter-clockwise; :func:`ring_bbox` gives
``(west, south, east, north)`` with ``west > east`` for a footprint that crosses 180 degrees (RFC 7946, 5.2).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Ring = Sequence[Sequence[float]]


def wrap_lon(lon):
    """Longitude(s) in degrees moved into [-180, 180] (180 itself is kept)."""
    a = np.asarray(lon, np.float64)
    out = np.where(np.abs(a) <= 180.0, a, (a + 180.0) % 360.0 - 180.0)
    return float(out) if out.ndim == 0 else out


def _unwrapped(ring: Ring) -> tuple[np.ndarray, np.ndarray]:
    """The ring's longitudes made continuous (no step over 180 degrees) and its latitudes."""
    xy = np.asarray(ring, np.float64)
    return np.unwrap(xy[:, 0], period=360.0), xy[:, 1]


def crosses_antimeridian(ring: Ring) -> bool:
    """Whether the outline passes over 180 degrees (its continuous longitudes leave [-180, 180])."""
    lons, _ = _unwrapped(ring)
    return bool(lons.min() < -180.0 or lons.max() > 180.0)


def ring_bbox(ring: Ring) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` degrees of an outline; ``west > east`` when it crosses 180 degrees."""
    lons, lats = _unwrapped(ring)
    lo, hi = float(lons.min()), float(lons.max())
    if hi - lo >= 360.0:
        return (-180.0, float(lats.min()), 180.0, float(lats.max()))
    shift = 360.0 * np.floor((lo + 180.0) / 360.0)  # the outline moved as a whole so that west is in [-180, 180)
    lo, hi = lo - shift, hi - shift
    return (float(lo), float(lats.min()), float(hi if hi <= 180.0 else hi - 360.0), float(lats.max()))


def footprint_geometry(ring: Ring):
    """The outline as a valid shapely Polygon, or a MultiPolygon split at the antimeridian, longitudes within
    [-180, 180], exteriors counter-clockwise. The ring's longitudes may be wrapped or continuous."""
    import shapely
    from shapely.geometry.polygon import orient

    lons, lats = _unwrapped(ring)
    if lons.min() >= -180.0 and lons.max() <= 180.0:
        return orient(shapely.Polygon(np.column_stack([lons, lats])), 1.0)
    import antimeridian

    # counter-clockwise first: antimeridian reads a crossing ring's interior on the left of its edges
    unwrapped = orient(shapely.Polygon(np.column_stack([lons, lats])), 1.0)
    xy = np.asarray(unwrapped.exterior.coords)
    wrapped = shapely.Polygon(np.column_stack([wrap_lon(xy[:, 0]), xy[:, 1]]))
    # planar edges between the reprojected points, as GeoParquet's ``edges: planar`` says
    geom = antimeridian.fix_polygon(wrapped, great_circle=False)
    return orient(geom, 1.0) if geom.geom_type == "Polygon" else shapely.MultiPolygon(
        [orient(p, 1.0) for p in geom.geoms])


def continuous_ring(geom) -> list[tuple[float, float]]:
    """One closed outline of a stored footprint (:func:`footprint_geometry`), longitudes continuous: the parts
    of a footprint split at the antimeridian are joined again (east of 180 they run past 180)."""
    import shapely
    from shapely.geometry.polygon import orient

    if geom.geom_type == "Polygon":
        return [tuple(map(float, p)) for p in orient(geom, 1.0).exterior.coords]
    parts = list(geom.geoms)
    if any(p.bounds[2] >= 180.0 for p in parts) and any(p.bounds[0] <= -180.0 for p in parts):
        parts = [shapely.affinity.translate(p, xoff=360.0) if p.bounds[0] <= -180.0 else p for p in parts]
    joined = shapely.union_all([shapely.set_precision(p, 1e-9) for p in parts])
    if joined.geom_type != "Polygon":  # parts that do not touch: the largest one
        joined = max(joined.geoms, key=lambda p: p.area)
    return [tuple(map(float, p)) for p in orient(joined, 1.0).exterior.coords]


def lon_extent(west, east) -> tuple[float, float]:
    """The narrowest ``(west, east)`` longitude range, degrees, that holds all the given ranges (arrays; a range
    with ``west > east`` crosses 180 degrees). ``west > east`` again when the result crosses 180 degrees;
    ``(-180, 180)`` when they go all round. The longitudes of a set of boxes near the antimeridian, say, give
    a narrow range across 180 degrees, not the whole world."""
    w = np.asarray(west, np.float64).ravel()
    e = np.asarray(east, np.float64).ravel()
    if not len(w):
        raise ValueError("lon_extent of no ranges")
    e = np.where(w > e, e + 360.0, e)  # continuous: east past 180 for a range that crosses it
    if (e - w).max() >= 360.0:
        return (-180.0, 180.0)
    order = np.argsort(w)
    w, e = w[order], e[order]
    # the largest gap between the ranges, going round the circle once; the extent is everything else
    best, gap_start, gap_end, reach = -1.0, 0.0, 0.0, w[0]
    for a, b in zip(w, e):
        if a > reach and a - reach > best:
            best, gap_start, gap_end = a - reach, reach, a
        reach = max(reach, b)
    if w[0] + 360.0 - reach > best:
        best, gap_start, gap_end = w[0] + 360.0 - reach, reach, w[0] + 360.0
    if best <= 0:
        return (-180.0, 180.0)
    west_, east_ = float(wrap_lon(gap_end)), float(wrap_lon(gap_start))
    if west_ == 180.0 and east_ != 180.0:
        west_ = -180.0
    return west_, east_
