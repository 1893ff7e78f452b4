"""Cutting images and GeoTIFFs of any size into chips, each with its pixel window and its place on Earth.

Frames and units
----------------
* A chip's ``window`` is ``(col_off, row_off, width, height)`` in pixels of the source raster (row 0 at the top).
* ``footprint`` is the chip outline as a closed ring of ``(lon, lat)`` WGS84 degrees (x = lon, y = lat),
  computed from the raster's own CRS and geotransform. Each edge is densified before reprojection, so a chip
  of a UTM scene is outlined by its true (slightly curved) shape in EPSG:4326, not by its four corners only.
  Longitudes are within [-180, 180]; a chip crossing the antimeridian is stored split there
  (:mod:`geovec.inputs.footprint`).
* ``centre_lat`` / ``centre_lon`` is the reprojected centre pixel of the window, not the mean of the corners.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from geovec.inputs import GeoVecInputError
from geovec.inputs.footprint import continuous_ring, ring_bbox, wrap_lon
from geovec.inputs.georef import acquisition_datetime
from geovec.inputs.policy import ReadPolicy, check_format, check_pixels, open_dataset, open_raster, read_policy
from geovec.inputs.raster import IMAGE_SUFFIXES, TIFF_SUFFIXES, RasterImage, read_image, read_tiff
from geovec.inputs.scaling import NODATA_PROBLEM

Window = tuple[int, int, int, int]
EDGE_POINTS = 8  # points per footprint edge before reprojection


@dataclass(frozen=True)
class ChipSpec:
    """How to cut: ``size`` and ``overlap`` in pixels, ``bands`` 1-based (None = the file's own RGB bands:
    :func:`geovec.inputs.bands.detect_product`); ``resize``: each chip's longer side is resized to this many
    pixels before it is embedded (None = embedded as cut). The chip's footprint is unchanged."""

    size: int = 256
    overlap: int = 0
    bands: tuple[int, ...] | None = None
    resize: int | None = None

    def __post_init__(self):
        if self.size < 8:
            raise ValueError(f"chip size must be at least 8 pixels, got {self.size}")
        if self.resize is not None and self.resize < 8:
            raise ValueError(f"chip resize must be at least 8 pixels, got {self.resize}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"chip overlap must be in [0, size), got {self.overlap} for size {self.size}")

    @property
    def stride(self) -> int:
        return self.size - self.overlap


@dataclass(frozen=True)
class Chip:
    """One window of one file, with where it lies on Earth (``None`` fields for plain images)."""

    path: str
    window: Window
    bands: tuple[int, ...] | None
    footprint: tuple[tuple[float, float], ...] | None
    centre_lat: float | None
    centre_lon: float | None
    datetime: datetime | None
    file_sig: str

    @property
    def id(self) -> str:
        """Stable id: file path + window + bands (the unit of resumability)."""
        c, r, w, h = self.window
        b = "" if not self.bands else "|b" + ",".join(map(str, self.bands))
        return f"{self.path}#{c},{r},{w},{h}{b}"

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) of the footprint; west > east when it crosses the antimeridian."""
        if self.footprint is None:
            return None
        return ring_bbox(self.footprint)

    def to_row(self) -> dict:
        """The chip as a flat, JSON- and Arrow-friendly row (what Ray tasks and shards carry);
        :meth:`from_row` reads it back."""
        return {"path": self.path, "window": list(self.window), "bands": list(self.bands) if self.bands else None,
                "footprint": json.dumps(self.footprint) if self.footprint else None, "centre_lat": self.centre_lat,
                "centre_lon": self.centre_lon, "datetime": self.datetime.isoformat() if self.datetime else None,
                "file_sig": self.file_sig}

    @classmethod
    def from_row(cls, r: dict) -> "Chip":
        """A chip from :meth:`to_row`'s row, or from an index row (``window_col`` / ``window_row`` /
        ``window_width`` / ``window_height``, ``bands`` as ``"4,3,2"``); absent place fields are None."""
        window = r.get("window")
        if window is None:
            window = (r["window_col"], r["window_row"], r["window_width"], r["window_height"])
        bands = r.get("bands")
        if isinstance(bands, str):
            bands = [b for b in bands.split(",") if b.strip()]
        fp = r.get("footprint")
        dt = r.get("datetime")
        return cls(path=r["path"], window=tuple(int(v) for v in window),
                   bands=tuple(int(b) for b in bands) if bands is not None and len(bands) else None,
                   footprint=_ring(fp),
                   centre_lat=_float_or_none(r.get("centre_lat")), centre_lon=_float_or_none(r.get("centre_lon")),
                   datetime=datetime.fromisoformat(dt) if isinstance(dt, str) and dt else
                   (dt if isinstance(dt, datetime) else None),
                   file_sig=r["file_sig"])


def _ring(fp) -> tuple[tuple[float, float], ...] | None:
    """A footprint ring from JSON text (:meth:`Chip.to_row`) or WKB (an index row)."""
    if not fp:
        return None
    if isinstance(fp, (bytes, bytearray)):
        import shapely

        return tuple(continuous_ring(shapely.from_wkb(bytes(fp))))
    return tuple(tuple(p) for p in json.loads(fp))


def _float_or_none(v) -> float | None:
    return None if v is None or np.isnan(v) else float(v)


def file_signature(path: str | os.PathLike) -> str:
    """Size and modification time: a changed file is re-chipped by an incremental build."""
    st = os.stat(path)
    return f"{st.st_size}-{st.st_mtime_ns}"


def grid_offsets(length: int, size: int, stride: int) -> list[int]:
    """Chip offsets along one axis covering ``[0, length)``: regular steps of ``stride``, and a last chip
    flush with the far edge so no pixel is lost. A raster smaller than ``size`` gives one chip at 0."""
    if length <= size:
        return [0]
    offsets = list(range(0, length - size + 1, stride))
    if offsets[-1] + size < length:
        offsets.append(length - size)
    return offsets


def grid_windows(width: int, height: int, spec: ChipSpec) -> list[Window]:
    """All chip windows of a ``width`` x ``height`` raster, row-major."""
    cols = grid_offsets(width, spec.size, spec.stride)
    rows = grid_offsets(height, spec.size, spec.stride)
    return [(c, r, min(spec.size, width - c), min(spec.size, height - r)) for r in rows for c in cols]


def _ring_pixels(window: Window, n: int = EDGE_POINTS) -> np.ndarray:
    """Closed, densified ring of pixel-corner coordinates (x=col, y=row): TL -> TR -> BR -> BL -> TL."""
    c, r, w, h = window
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    top = np.stack([c + t * w, np.full_like(t, r)], 1)
    right = np.stack([np.full_like(t, c + w), r + t * h], 1)
    bottom = np.stack([c + w - t * w, np.full_like(t, r + h)], 1)
    left = np.stack([np.full_like(t, c), r + h - t * h], 1)
    ring = np.concatenate([top, right, bottom, left])
    return np.concatenate([ring, ring[:1]])


def footprints(transform, crs, windows: Sequence[Window]) -> list[tuple[tuple, float, float]]:
    """(footprint ring, centre_lat, centre_lon) for each window, all reprojected to EPSG:4326 in one call."""
    from rasterio.warp import transform as warp_transform

    rings = [_ring_pixels(w) for w in windows]
    n = len(rings[0]) if rings else 0
    px = np.concatenate(rings + [np.array([[c + w / 2.0, r + h / 2.0] for c, r, w, h in windows])]) if rings else np.zeros((0, 2))
    xs, ys = transform @ (px[:, 0], px[:, 1])
    lons, lats = warp_transform(crs, "EPSG:4326", np.asarray(xs).tolist(), np.asarray(ys).tolist())
    lons, lats = wrap_lon(np.asarray(lons)), np.asarray(lats)  # an EPSG:4326 grid may run past 180 degrees
    out = []
    k = len(windows)
    for i in range(k):
        sl = slice(i * n, (i + 1) * n)
        ring = tuple((float(a), float(b)) for a, b in zip(lons[sl], lats[sl]))
        out.append((ring, float(lats[k * n + i]), float(lons[k * n + i])))
    return out




def plan_chips(path: str | os.PathLike, spec: ChipSpec) -> list[Chip]:
    """Chips of one file, from its header only (no pixels read). Raises :class:`GeoVecInputError` for a file
    that cannot be opened, lacks a requested band, or (not a TIFF, so decoded whole) exceeds the pixel limit."""
    path = str(Path(path).resolve())
    try:
        sig = file_signature(path)
    except OSError as e:
        raise GeoVecInputError(f"cannot read file: {e.strerror or e}", source=path) from None
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        try:
            with open_raster(path) as ds:
                if spec.bands:
                    bad = [b for b in spec.bands if not 1 <= b <= ds.count]
                    if bad:
                        raise GeoVecInputError(f"band(s) {bad} requested but the raster has {ds.count} band(s)",
                                               source=path)
                windows = grid_windows(ds.width, ds.height, spec)
                when = acquisition_datetime(ds.tags())
                if ds.crs is not None and not ds.transform.is_identity:
                    geo = footprints(ds.transform, ds.crs, windows)
                else:
                    geo = [(None, None, None)] * len(windows)
        except GeoVecInputError:
            raise
        except Exception as e:  # rasterio raises several unrelated types for corrupt files
            raise GeoVecInputError(f"cannot read raster: {e}", source=path) from None
        return [Chip(path, w, spec.bands, fp, lat, lon, when, sig) for w, (fp, lat, lon) in zip(windows, geo)]
    from PIL import Image

    fmt = check_format(path, read_policy().drivers)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=None if fmt is None else _pil_formats(fmt)) as im:
                width, height = im.size
    except Image.DecompressionBombError as e:
        raise GeoVecInputError(f"image is too large to decode (decompression bomb guard): {e}", source=path) from None
    except Exception as e:  # Pillow raises many types for malformed files
        raise GeoVecInputError(f"cannot decode image: {e}", source=path) from None
    # a PNG / JPEG is decoded whole to cut its chips (no windowed reads): the whole-image limit applies
    check_pixels(width, height, read_policy().max_pixels, path)
    return [Chip(path, w, None, None, None, None, None, sig) for w in grid_windows(width, height, spec)]


def _pil_formats(fmt: str) -> tuple[str, ...]:
    from geovec.inputs.policy import PIL_FORMATS

    return PIL_FORMATS.get(fmt, ())


@functools.lru_cache(maxsize=2)
def _decoded(path: str, file_sig: str, policy: ReadPolicy) -> RasterImage:
    """A whole non-TIFF image, decoded once for all its chips (not once per chip)."""
    return read_image(path, max_pixels=policy.max_pixels, drivers=policy.drivers)


_HELD = threading.local()  # per thread: the one raster file kept open between chip reads


def _held_dataset(path: str, file_sig: str, policy: ReadPolicy):
    """This thread's open dataset of ``path`` (opened on first use, the previous file's closed): the chips of a
    file read one after another in one thread share GDAL's cache of decoded tiles, so a 512-px tile of a large
    scene is decoded once, not once per 256-px chip over it. Closed with its thread."""
    key = (path, file_sig, policy)
    held = getattr(_HELD, "held", None)
    if held is not None and held[0] == key and not held[1].closed:
        return held[1]
    if held is not None:
        held[1].close()
    _HELD.held = None
    ds = open_dataset(path, policy.drivers)
    _HELD.held = (key, ds)
    return ds


def read_chip(chip: Chip, georef: bool = True) -> RasterImage:
    """The chip's pixels (uint8 RGB) with the georeference of its window (``georef=False``: none; the chip
    has its footprint). Raises :class:`GeoVecInputError`. TIFFs are read through the chip's window only (the
    file held open per thread); other images are decoded whole (once, cached)."""
    if Path(chip.path).suffix.lower() in TIFF_SUFFIXES:
        policy = read_policy()
        try:
            ds = _held_dataset(chip.path, chip.file_sig, policy)
        except GeoVecInputError:
            raise
        except Exception as e:  # rasterio raises several unrelated types for corrupt files
            raise GeoVecInputError(f"cannot read raster: {e}", source=chip.path) from None
        return read_tiff(chip.path, bands=chip.bands, window=chip.window, dataset=ds, georef=georef,
                         max_pixels=policy.max_pixels, drivers=policy.drivers)
    full = _decoded(chip.path, chip.file_sig, read_policy())
    c, r, w, h = chip.window
    if c + w > full.width or r + h > full.height:
        raise GeoVecInputError(f"window {chip.window} lies outside the {full.width}x{full.height} image", source=chip.path)
    pixels = np.ascontiguousarray(full.pixels[r : r + h, c : c + w])
    if full.valid is None:
        return RasterImage(pixels, None, chip.path)
    valid = full.valid[r : r + h, c : c + w]
    if not valid.any():
        raise GeoVecInputError(f"{NODATA_PROBLEM}: every pixel of this chip is transparent (alpha 0)",
                               source=chip.path)
    return RasterImage(pixels, None, chip.path, float(1.0 - valid.mean()), valid)


def discover_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files under ``paths`` (files, or folders searched recursively), sorted and de-duplicated.
    Returns (files, problems) where problems are (path, reason) for paths that do not exist."""
    files: dict[str, Path] = {}
    problems: list[tuple[str, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    files.setdefault(str(f.resolve()), f.resolve())
        elif p.is_file():
            files.setdefault(str(p.resolve()), p.resolve())
        else:
            problems.append((str(p), "does not exist"))
    return [files[k] for k in sorted(files)], problems



def iter_plans(files: Sequence[Path], spec: ChipSpec) -> Iterator[tuple[Path, list[Chip] | None, str | None]]:
    """(file, chips, problem) per file; a file that cannot be opened gives (file, None, problem)."""
    for f in files:
        try:
            yield f, plan_chips(f, spec), None
        except GeoVecInputError as e:
            yield f, None, e.problem
