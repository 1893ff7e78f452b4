"""The indexed chips' own pixels for the map page: a thumbnail of a chip (its window, read from the source raster
with the index's bands and scaling, as it was embedded) and an overlay (the same pixels reprojected into Web
Mercator over the chip's lon/lat bounding box, transparent outside the footprint), so that a web map (Leaflet's
``imageOverlay`` with the bbox as bounds) draws them at their true place. Rendered PNGs are kept in a bounded
in-memory LRU cache; responses carry an ``ETag`` (chip id, size, the file's size + mtime) for HTTP caching.

Basemaps: :class:`Basemap` is the ``--basemap URL_TEMPLATE`` of ``geovec serve``, an ``http(s)://`` XYZ template
given to the browser as is, or a local file template (``/data/tiles/{z}/{x}/{y}.png``) served by this server
at ``/basemap/{z}/{x}/{y}``."""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geovec.inputs import GeoVecInputError

MERCATOR_MAX_LAT = 85.05112878
EARTH_RADIUS_M = 6378137.0
CHIP_COLUMNS = ["id", "path", "window_col", "window_row", "window_width", "window_height", "bands", "file_sig",
                "min_lon", "min_lat", "max_lon", "max_lat"]


class ChipMissing(LookupError):
    """No chip with this id in the index."""


class NotGeoreferenced(LookupError):
    """The chip has no place on Earth (a plain PNG / JPEG): it has a thumbnail but no map overlay."""


# EPSG:3857 with PROJ's +over: longitudes past 180 are not wrapped back, so an overlay across the antimeridian
# maps to the source pixels east of 180 (UTM: wrapped by its own projection; EPSG:4326 files: lon > 180 as stored)
WEB_MERCATOR_PAST_180 = ("+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
                         "+nadgrids=@null +over +wktext +no_defs")


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:4326 degrees -> EPSG:3857 metres (latitude clamped to Web Mercator's range)."""
    lat = max(-MERCATOR_MAX_LAT, min(MERCATOR_MAX_LAT, lat))
    return (EARTH_RADIUS_M * math.radians(lon),
            EARTH_RADIUS_M * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class ChipImagery:
    """Thumbnails and map overlays of the chips of ``store``, rendered on demand and cached (``max_bytes``)."""

    def __init__(self, store, max_bytes: int = 64 * 1024 * 1024):
        self.store = store
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    # --- lookup -------------------------------------------------------------------------------------------------
    def row(self, chip_id: str) -> dict:
        from geovec.index.store import sql_str

        rows = self.store.column(*CHIP_COLUMNS, where="id = " + sql_str(chip_id)).to_pylist()
        if not rows:
            raise ChipMissing(chip_id)
        return rows[0]

    @staticmethod
    def chip_of(row: dict):
        from geovec.index.chips import Chip

        bands = tuple(int(b) for b in row["bands"].split(",")) if row.get("bands") else None
        window = (int(row["window_col"]), int(row["window_row"]), int(row["window_width"]), int(row["window_height"]))
        return Chip(path=row["path"], window=window, bands=bands, footprint=None, centre_lat=None, centre_lon=None,
                    datetime=None, file_sig=row["file_sig"])

    def _cached(self, key: tuple, render) -> tuple[bytes, str]:
        with self._lock:
            got = self._cache.get(key)
            if got is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return got
        png = render()
        etag = '"' + hashlib.sha1(repr(key).encode("utf-8", "backslashreplace")).hexdigest()[:20] + '"'
        with self._lock:
            self.misses += 1
            if key not in self._cache and len(png) <= self.max_bytes:
                self._cache[key] = (png, etag)
                self._bytes += len(png)
                while self._bytes > self.max_bytes:
                    _, (old, _) = self._cache.popitem(last=False)
                    self._bytes -= len(old)
        return png, etag

    def _key(self, kind: str, row: dict, size: int) -> tuple:
        from geovec.index.chips import file_signature

        try:
            sig = file_signature(row["path"])  # a file changed since indexing gets new images (and a new ETag)
        except OSError:
            sig = row["file_sig"]
        return (kind, row["id"], int(size), sig)

    # --- images -------------------------------------------------------------------------------------------------
    def thumbnail(self, chip_id: str, size: int = 128) -> tuple[bytes, str]:
        """PNG of the chip's pixels, fitted into ``size`` x ``size`` (never enlarged), and its ETag."""
        row = self.row(chip_id)

        def render() -> bytes:
            from PIL import Image

            from geovec.index.chips import read_chip

            im = Image.fromarray(read_chip(self.chip_of(row)).pixels)
            im.thumbnail((size, size))
            return _png(np.asarray(im))

        return self._cached(self._key("thumbnail", row, size), render)

    def overlay(self, chip_id: str, size: int = 256) -> tuple[bytes, str]:
        """RGBA PNG of the chip reprojected to EPSG:3857 over its lon/lat bbox (the image's bounds on a web map:
        south-west (min_lat, min_lon), north-east (max_lat, max_lon)); transparent outside the footprint. The
        longer side is ``size`` pixels, at most the chip's own resolution."""
        row = self.row(chip_id)
        if row.get("min_lon") is None:
            raise NotGeoreferenced(chip_id)

        def render() -> bytes:
            return _png(self._warp(row, size))

        return self._cached(self._key("overlay", row, size), render)

    def _warp(self, row: dict, size: int) -> np.ndarray:
        from rasterio.transform import from_bounds
        from rasterio.warp import Resampling, reproject
        from rasterio.windows import Window

        from geovec.index.chips import read_chip
        from geovec.inputs.policy import open_raster

        chip = self.chip_of(row)
        pixels = read_chip(chip).pixels  # (H, W, 3) uint8, the index's bands and scaling
        try:
            with open_raster(chip.path) as ds:
                src_crs, src_transform = ds.crs, ds.window_transform(Window(*chip.window))
        except GeoVecInputError:
            raise
        except Exception as e:  # rasterio raises several types for unreadable files
            raise GeoVecInputError(f"cannot read raster: {e}", source=chip.path) from None
        x0, y0 = mercator(row["min_lon"], row["min_lat"])
        # a chip across 180 degrees (min_lon > max_lon): its east edge past 180, as the page places the overlay
        x1, y1 = mercator(row["max_lon"] + (360.0 if row["min_lon"] > row["max_lon"] else 0.0), row["max_lat"])
        span_x, span_y = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
        longest = max(1, min(int(size), max(pixels.shape[:2])))
        if span_x >= span_y:
            w, h = longest, max(1, round(longest * span_y / span_x))
        else:
            w, h = max(1, round(longest * span_x / span_y)), longest
        dst_transform = from_bounds(x0, y0, x1, y1, w, h)
        rgb = np.zeros((3, h, w), np.uint8)
        reproject(np.ascontiguousarray(pixels.transpose(2, 0, 1)), rgb, src_transform=src_transform, src_crs=src_crs,
                  dst_transform=dst_transform, dst_crs=WEB_MERCATOR_PAST_180, resampling=Resampling.bilinear)
        alpha = np.zeros((h, w), np.uint8)
        reproject(np.full(pixels.shape[:2], 255, np.uint8), alpha, src_transform=src_transform, src_crs=src_crs,
                  dst_transform=dst_transform, dst_crs=WEB_MERCATOR_PAST_180, resampling=Resampling.nearest, dst_nodata=0)
        return np.dstack([rgb.transpose(1, 2, 0), alpha])


@dataclass(frozen=True)
class Basemap:
    """An XYZ tile source for the map page. ``template``: ``http(s)://host/{z}/{x}/{y}.png`` (the browser fetches
    it; ``{s}`` subdomains allowed) or a local file template with ``{z}``, ``{x}``, ``{y}`` (served by geovec at
    ``/basemap/{z}/{x}/{y}``, so the page stays offline)."""

    template: str
    attribution: str | None = None
    max_native_zoom: int | None = None

    def __post_init__(self):
        for part in ("{z}", "{x}", "{y}"):
            if part not in self.template and not (part == "{y}" and "{-y}" in self.template):
                raise ValueError(f"--basemap must be an XYZ template with {{z}}, {{x}} and {{y}}, got {self.template!r}")
        if not self.remote:
            root = self.local_root
            if not root.is_dir():
                raise ValueError(f"--basemap {self.template!r}: folder {root} does not exist")

    @property
    def remote(self) -> bool:
        return self.template.startswith(("http://", "https://"))

    @property
    def local_root(self) -> Path:
        """The folder of a local template above its first placeholder."""
        head = self.template.split("{", 1)[0]
        return Path(head if head.endswith(("/", "\\")) else Path(head).parent).expanduser().resolve()

    def local_file(self, z: int, x: int, y: int) -> Path | None:
        """The tile file of a local template (only integers are substituted: no path can be injected)."""
        if self.remote or not (0 <= z <= 30 and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        path = (self.template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{-y}", str(2**z - 1 - y))
                .replace("{y}", str(y)))
        p = Path(path).expanduser()
        return p if p.is_file() else None

    def browser_config(self) -> dict:
        """What the page's Leaflet tile layer gets."""
        if self.remote:
            url = self.template
        else:
            suffix = Path(self.template).suffix
            url = "/basemap/{z}/{x}/{y}" + (suffix if suffix and "{" not in suffix else "")
        return {"url": url, "attribution": self.attribution or "", "max_native_zoom": self.max_native_zoom,
                "local": not self.remote}
