"""XYZ map tiles (Web Mercator, 256 px) of the indexed imagery itself, at every zoom, rendered with rio-tiler from
the rasters the index was built from, with the index's bands and display scaling (what the chips look like).

Zoomed in, a tile reads a few blocks of the source. Zoomed out, reading a large raster without overviews means
decoding all of it (a 10980 x 10980 Sentinel-2-sized tile: 4-9 s per tile), so each raster longer than
``PREVIEW_MAX`` pixels gets a *preview* once: an 8-bit RGB GeoTIFF at most ``PREVIEW_MAX`` px on its longer
side, already scaled, with internal overviews, in ``<db>/_previews/`` (or the user cache when the index folder
is read-only; JPEG inside the TIFF, with an internal mask). Tiles coarser than the preview's pixels are read from it (~20 ms), finer ones from the source.
``benchmarks/map_tiles.py`` measured both (docs/search.md)."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geovec.inputs.footprint import lon_extent

PREVIEW_MAX = 2048  # longer side of a preview, pixels
_PREVIEW_NAME = re.compile(r"[0-9a-f]{24}\.tif")  # a finished preview (not a writer's temporary file)
TILE = 256
MAX_FILES_PER_TILE = 256  # a tile over more rasters than this is left empty (their outlines still show)
EQUATOR_M = 40075016.686


@dataclass
class SourceFile:
    path: str
    bands: tuple[int, ...] | None
    bbox: tuple[float, float, float, float]  # lon/lat of the union of its chips (west > east: across 180 degrees)
    sig: str


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) degrees of XYZ tile z/x/y."""
    n = 2.0**z

    def lat(row):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def _png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=6)
    return buf.getvalue()


EMPTY_PNG = _png(np.zeros((TILE, TILE, 4), np.uint8))


def _ground_metres(ds) -> float:
    """A raster's pixel size in metres (degrees converted at its centre latitude for a geographic CRS)."""
    px = abs(ds.transform.a)
    if ds.crs is not None and ds.crs.is_geographic:
        lat = (ds.bounds.bottom + ds.bounds.top) / 2
        return px * EQUATOR_M / 360 * max(math.cos(math.radians(lat)), 1e-6)
    return px * (ds.crs.linear_units_factor[1] if ds.crs is not None else 1.0)


@contextmanager
def _reader(path: str, turn: float = 0.0):
    """A rio-tiler Reader of ``path``; ``turn``: degrees its (geographic) grid is moved east (+-360 or 0)."""
    from rio_tiler.io import Reader

    if not turn:
        with Reader(path) as r:
            yield r
        return
    import rasterio
    from affine import Affine
    from rasterio.enums import MaskFlags
    from rasterio.vrt import WarpedVRT

    with rasterio.open(path) as ds:
        moved = Affine.translation(turn, 0.0) * ds.transform
        masked = MaskFlags.per_dataset in ds.mask_flag_enums[0]  # a preview's internal mask: kept as alpha
        with WarpedVRT(ds, src_transform=moved, crs=ds.crs, transform=moved, width=ds.width, height=ds.height,
                       add_alpha=masked) as vrt, Reader(None, dataset=vrt) as r:
            yield r


class Tiler:
    """Renders tiles of the rasters of ``store``. ``preview_dir``: where previews go (default ``<db>/_previews``,
    else the user cache); ``previews=False`` reads only the sources (the benchmark's baseline)."""

    def __init__(self, store, preview_dir: str | Path | None = None, previews: bool = True):
        self.store = store
        self.previews = previews
        self.preview_dir = Path(preview_dir) if preview_dir else self._default_dir()
        self._files: list[SourceFile] = []
        self._boxes = np.zeros((0, 4))
        self._version = None
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._meta: dict[str, tuple] = {}  # "path|signature" -> _info(...)

    def _default_dir(self) -> Path:
        d = Path(self.store.path) / "_previews"
        try:
            d.mkdir(exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            pass
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "geovec" / "previews"

    # --- which rasters ------------------------------------------------------------------------------------------
    def files(self) -> list[SourceFile]:
        """The georeferenced rasters of the index with the lon/lat bbox of their chips (re-read when the table
        changes)."""
        version = getattr(self.store.table, "version", None)
        with self._lock:
            if version is None or version != self._version:
                t = self.store.column("path", "bands", "file_sig", "min_lon", "min_lat", "max_lon", "max_lat",
                                      where="min_lon IS NOT NULL")
                df = t.to_pandas()
                files = []
                for (path, bands, sig), g in df.groupby(["path", df["bands"].fillna(""), df["file_sig"].fillna("")],
                                                        sort=True):
                    west, east = lon_extent(g.min_lon, g.max_lon)
                    files.append(SourceFile(path, tuple(int(b) for b in bands.split(",")) if bands else None,
                                            (west, g.min_lat.min(), east, g.max_lat.max()), sig))
                self._files = files
                self._boxes = np.array([f.bbox for f in files], float).reshape(-1, 4)
                self._version = version
            return self._files

    def files_in(self, bounds) -> list[SourceFile]:
        files = self.files()
        w, s, e, n = bounds
        b = self._boxes
        crossing = b[:, 0] > b[:, 2]  # [west, 180] and [-180, east]
        lon_hit = np.where(crossing, (b[:, 0] <= e) | (b[:, 2] >= w), (b[:, 0] <= e) & (b[:, 2] >= w))
        hit = lon_hit & (b[:, 1] <= n) & (b[:, 3] >= s)
        return [files[i] for i in np.flatnonzero(hit)]

    # --- one raster -------------------------------------------------------------------------------------------
    def _info(self, f: SourceFile):
        """(band indexes, product, metres per pixel, longer side in pixels, (left, right) longitudes of a
        geographic raster else None) of a source raster, read once."""
        got = self._meta.get(f.path + "|" + f.sig)
        if got is None:
            from geovec.inputs.bands import check_bands, detect_product
            from geovec.inputs.policy import open_raster

            with open_raster(f.path) as ds:
                product = detect_product(ds, f.path)
                idx = list(check_bands(f.bands, ds.count)) if f.bands else list(product.rgb)
                lons = (ds.bounds.left, ds.bounds.right) if ds.crs is not None and ds.crs.is_geographic else None
                got = (idx, product, _ground_metres(ds), max(ds.width, ds.height), lons)
            self._meta[f.path + "|" + f.sig] = got
        return got

    def _scaled(self, data: np.ndarray, f: SourceFile) -> np.ndarray:
        """(C, H, W) raw values -> (H, W, 3) uint8 with the file's own display scaling (as its chips)."""
        from geovec.inputs.scaling import scale_raster, to_rgb

        idx, product = self._info(f)[:2]
        return to_rgb(scale_raster(np.moveaxis(data, 0, -1), f.path, idx, product))

    def preview_path(self, f: SourceFile) -> Path:
        key = hashlib.sha1(f"{f.path}|{f.sig}|{f.bands}".encode("utf-8", "backslashreplace")).hexdigest()[:24]
        return self.preview_dir / f"{key}.tif"

    def preview(self, f: SourceFile) -> Path | None:
        """The raster's preview (written the first time it is needed; ``None`` for a raster small enough to read
        whole cheaply)."""
        if self._info(f)[3] <= PREVIEW_MAX or not self.previews:
            return None
        out = self.preview_path(f)
        if out.exists():
            return out
        with self._lock:
            lock = self._building.setdefault(str(out), threading.Lock())
        with lock:  # one writer per preview; the others wait for it
            if not out.exists():
                self._write_preview(f, out)
        return out

    def _write_preview(self, f: SourceFile, out: Path) -> None:
        import rasterio
        from rasterio.enums import Resampling

        from geovec.inputs.policy import open_raster

        idx, _, _, size, _ = self._info(f)
        factor = math.ceil(size / PREVIEW_MAX)
        with open_raster(f.path) as ds:
            h, w = max(1, ds.height // factor), max(1, ds.width // factor)
            data = ds.read(idx, out_shape=(len(idx), h, w), resampling=Resampling.average, masked=True)
            valid = ~np.ma.getmaskarray(data).all(axis=0)
            transform = ds.transform * ds.transform.scale(ds.width / w, ds.height / h)
            crs = ds.crs
        rgb = self._scaled(np.ma.filled(data, 0), f)
        alpha = np.where(valid, 255, 0).astype(np.uint8)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.tif")
        # JPEG (YCbCr) with an internal mask: ~5x smaller than lossless, and a preview is for looking at
        profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=crs, transform=transform,
                       tiled=True, blockxsize=256, blockysize=256, compress="jpeg", photometric="YCbCr",
                       jpeg_quality=90)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
            dst.write_mask(alpha)
            dst.build_overviews([2, 4, 8, 16], Resampling.average)
        tmp.replace(out)  # atomic: a reader never sees half a preview

    def _read(self, f: SourceFile, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(RGB (256, 256, 3) uint8, valid mask (256, 256) bool) of raster ``f`` in tile z/x/y."""
        from rio_tiler.errors import TileOutsideBounds

        idx, _, metres, size, lons = self._info(f)
        w, s, e, n = tile_bounds(z, x, y)
        # an EPSG:4326 raster whose own longitudes pass 180 (179.5 to 180.5, say): east of 180 it is read moved
        # by a whole turn, so tiles at -180 show it too
        turn = (-360.0 if lons and lons[1] > 180.0 and w < 0 else 360.0 if lons and lons[0] < -180.0 and e > 0
                else 0.0)
        tile_m = EQUATOR_M * math.cos(math.radians(max(-85.0, min(85.0, (s + n) / 2)))) / 2 ** (z + 8)
        # the preview where its pixels are at most a little coarser than the tile's (else the source)
        use_preview = tile_m >= 0.75 * metres * math.ceil(size / PREVIEW_MAX)
        prev = self.preview(f) if use_preview else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rio-tiler's NoOverviewWarning: the previews are the overviews
            try:
                if prev is not None:
                    with _reader(str(prev), turn) as r:
                        img = r.tile(x, y, z, tilesize=TILE, reproject_method="bilinear")
                    rgb = np.moveaxis(np.asarray(img.data[:3]), 0, -1).astype(np.uint8)
                    mask = np.asarray(img.mask) > 0
                else:
                    with _reader(f.path, turn) as r:
                        img = r.tile(x, y, z, tilesize=TILE, indexes=tuple(idx))
                    rgb = self._scaled(np.asarray(img.data), f)
                    mask = np.asarray(img.mask) > 0
            except TileOutsideBounds:
                return None
        return rgb, mask

    def tile(self, z: int, x: int, y: int) -> bytes:
        """PNG (RGBA, transparent where no raster is) of tile z/x/y: the rasters whose chips it touches, the
        first one in path order on top where they overlap."""
        files = self.files_in(tile_bounds(z, x, y))
        if not files or len(files) > MAX_FILES_PER_TILE:
            return EMPTY_PNG
        out = np.zeros((TILE, TILE, 4), np.uint8)
        filled = np.zeros((TILE, TILE), bool)
        for f in files:
            try:
                got = self._read(f, z, x, y)
            except Exception:  # a file gone or unreadable since indexing: its part of the tile stays empty
                continue
            if got is None:
                continue
            rgb, mask = got
            new = mask & ~filled
            out[new, :3] = rgb[new]
            out[new, 3] = 255
            filled |= new
            if filled.all():
                break
        return _png(out) if filled.any() else EMPTY_PNG

    def warm(self) -> int:
        """Write the previews of all large rasters now and delete the index's stale ones (:meth:`prune`); the
        server does this in the background at start. Returns the previews in use."""
        n = 0
        for f in self.files():
            try:
                n += self.preview(f) is not None
            except Exception:  # unreadable: its tiles stay empty, the chips' own endpoints say why
                continue
        self.prune()
        return n

    def prune(self) -> int:
        """Delete the previews in the index's own ``_previews`` folder that no indexed raster uses any more (a file
        re-indexed after it changed, or removed from the index); returns how many. Previews in the shared user
        cache are left alone: other indexes may use them."""
        if self.preview_dir != Path(self.store.path) / "_previews" or not self.preview_dir.is_dir():
            return 0
        keep = {self.preview_path(f).name for f in self.files()}
        stale = [p for p in self.preview_dir.glob("*.tif") if _PREVIEW_NAME.fullmatch(p.name) and p.name not in keep]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)
