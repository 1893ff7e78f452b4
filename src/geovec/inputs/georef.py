"""Where a georeferenced image lies on Earth (:class:`GeoRef`, WGS84) and when it was taken, from its raster header."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from geovec.inputs.policy import FROM_POLICY, open_raster


@dataclass(frozen=True)
class GeoRef:
    """Where a georeferenced image lies on Earth, in WGS84 degrees.

    ``footprint`` is the image outline as a closed ring of ``(lon, lat)`` pairs (x = lon, y = lat, as in
    GeoJSON), corners in the order top-left, top-right, bottom-right, bottom-left of the pixel grid.
    """

    centre_lat: float
    centre_lon: float
    footprint: tuple[tuple[float, float], ...]
    crs: str

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) degrees; west > east when the footprint crosses the antimeridian."""
        from geovec.inputs.footprint import ring_bbox

        return ring_bbox(self.footprint)

    def footprint_wkt(self) -> str:
        ring = ", ".join(f"{x:.7f} {y:.7f}" for x, y in self.footprint)
        return f"POLYGON (({ring}))"


def acquisition_datetime(tags: dict) -> datetime | None:
    """The acquisition time a GeoTIFF's tags state (ACQUISITION_DATETIME, TIFFTAG_DATETIME, ...), or None."""
    for key in ("ACQUISITION_DATETIME", "ACQUISITIONDATETIME", "DATETIME", "TIFFTAG_DATETIME"):
        value = tags.get(key)
        if not value:
            continue
        for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
            try:
                return datetime.strptime(value.strip(), fmt)
            except ValueError:
                continue
    return None


def georef_from(crs, transform, width: int, height: int) -> GeoRef | None:
    """Centre and footprint in WGS84 of a ``width x height`` pixel grid with an affine ``transform`` in ``crs``;
    longitudes within [-180, 180] (an EPSG:4326 grid running past 180 degrees is wrapped)."""
    from rasterio.warp import transform as warp_transform

    from geovec.inputs.footprint import wrap_lon

    if crs is None or transform.is_identity:
        return None
    w, h = width, height
    corners_px = [(0, 0), (w, 0), (w, h), (0, h)]
    xs, ys = zip(*[transform @ c for c in corners_px])
    cx, cy = transform @ (w / 2.0, h / 2.0)
    lons, lats = warp_transform(crs, "EPSG:4326", list(xs) + [cx], list(ys) + [cy])
    lons = wrap_lon(lons)
    ring = tuple((float(lo), float(la)) for lo, la in zip(lons[:4], lats[:4]))
    return GeoRef(
        centre_lat=float(lats[4]),
        centre_lon=float(lons[4]),
        footprint=ring + (ring[0],),
        crs=crs.to_string(),
    )


def read_georef(path: str | os.PathLike, drivers=FROM_POLICY) -> GeoRef | None:
    """Only the georeference of a raster file (no pixels read)."""
    with open_raster(path, drivers) as ds:
        return georef_from(ds.crs, ds.transform, ds.width, ds.height)
