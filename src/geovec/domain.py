"""The package's vocabulary, defined once: task kinds, sides, item keys and modalities, points on Earth.

Everything here is plain data (no torch, no I/O) so any layer may import it: inputs, models, bench, train,
index, serve and the CLIs all name these, never a copy.

Points cross function boundaries as :class:`LatLon` (or as keyword ``lat=`` / ``lon=``), never as a bare
positional pair: WGS84 degrees, latitude first as in "52.1 N, 5.2 E". Boxes on the Earth are lon-first
``(min_lon, min_lat, max_lon, max_lat)`` like GeoJSON and every geospatial library; a pair that could be read
either way is exactly what :class:`LatLon` names.
"""

from __future__ import annotations

from typing import NamedTuple

# what an instruction is chosen for: each has a named query instruction (geovec.models.instructions)
TASK_KINDS = ("classification", "retrieval", "composed", "vqa", "region", "referring", "geo")
# which end of a comparison an item is embedded for: the query, or a candidate ("document")
SIDES = ("query", "document")
# keys of an item dict (encode, JSONL files, the server, training data)
ITEM_KEYS = ("image", "text", "box", "boxes", "lat", "lon", "instruction", "bands")
# modalities of a sequence, in an item's ``order``
MODALITIES = ("image", "box", "location", "text")

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG), the sphere every distance here is measured on


class LatLon(NamedTuple):
    """A point in WGS84 degrees, by name: ``LatLon(lat=52.1, lon=5.2)``."""

    lat: float
    lon: float

    @classmethod
    def of(cls, value) -> "LatLon":
        """A LatLon from a LatLon, a ``{"lat", "lon"}`` mapping or a (lat, lon) pair."""
        if isinstance(value, LatLon):
            return value
        if isinstance(value, dict):
            return cls(float(value["lat"]), float(value["lon"]))
        lat, lon = value
        return cls(float(lat), float(lon))

    @property
    def valid(self) -> bool:
        return -90 <= self.lat <= 90 and -180 <= self.lon <= 180


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in WGS84 degrees (numpy broadcasting; a sphere of
    radius :data:`EARTH_RADIUS_KM`)."""
    import numpy as np

    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
