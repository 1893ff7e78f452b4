"""Reading images (PIL, numpy, JPEG/PNG/TIFF/GeoTIFF paths) into 8-bit RGB plus optional georeference.

Reading files follows a :class:`ReadPolicy` (process-wide, see :func:`set_read_policy`):

* **formats**: a file is opened only when its *content* (magic bytes, not its name) is one of
  :data:`SAFE_DRIVERS` (GTiff, PNG, JPEG, WebP, BMP), with exactly that GDAL driver / Pillow plugin. A ``.tif``
  that is really a GDAL VRT (XML that reads rasters from anywhere on disk) or any other format is refused.
* **pixels**: an image read *whole* from a file may have at most ``max_pixels`` pixels (width x height,
  default :data:`DEFAULT_MAX_IMAGE_MP` megapixels; env ``GEOVEC_MAX_IMAGE_MP``; 0 = no limit), checked from
  the header before any pixel is decoded. Windowed reads (chips) are limited by their window only.
  Decompression bombs (tiny files declaring huge images) are a :class:`GeoVecInputError`, like any bad file.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from geovec.inputs.errors import GeoVecInputError

TIFF_SUFFIXES = {".tif", ".tiff", ".gtif", ".geotiff"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"} | TIFF_SUFFIXES

# formats (GDAL driver names) a file may be opened as, recognised by content; they never read other files
SAFE_DRIVERS = ("GTiff", "PNG", "JPEG", "WEBP", "BMP")
# the Pillow format names of each of those drivers (Pillow opens a file only as one of them)
PIL_FORMATS = {"GTiff": ("TIFF",), "PNG": ("PNG",), "JPEG": ("JPEG", "MPO"), "WEBP": ("WEBP",), "BMP": ("BMP",)}
DEFAULT_MAX_IMAGE_MP = 100.0
NODATA_PROBLEM = "image has no valid pixel"  # start of the error for all-nodata / all-NaN rasters


@dataclass(frozen=True)
class ReadPolicy:
    """How image files are opened: ``max_pixels`` for a whole-image read (None = no limit) and the
    ``drivers`` a file's content may be (None = any format GDAL / Pillow recognise, VRT included)."""

    max_pixels: int | None = int(DEFAULT_MAX_IMAGE_MP * 1e6)
    drivers: tuple[str, ...] | None = SAFE_DRIVERS


def mp_to_pixels(mp: float | None) -> int | None:
    if mp is None or mp <= 0:
        return None
    return int(mp * 1e6)


def _policy_from_env() -> ReadPolicy:
    """``$GEOVEC_MAX_IMAGE_MP`` (megapixels, 0 = no limit) and ``$GEOVEC_RASTER_DRIVERS`` (``any``, or GDAL
    driver names separated by commas) over the defaults; also how worker processes (Ray) get a job's policy."""
    policy = ReadPolicy()
    raw = os.environ.get("GEOVEC_MAX_IMAGE_MP")
    if raw is not None:
        try:
            policy = replace(policy, max_pixels=mp_to_pixels(float(raw)))
        except ValueError:
            raise ValueError(f"GEOVEC_MAX_IMAGE_MP must be a number of megapixels (0 = no limit), got {raw!r}") from None
    drivers = os.environ.get("GEOVEC_RASTER_DRIVERS")
    if drivers:
        policy = replace(policy, drivers=None if drivers.strip().lower() == "any"
                         else tuple(d.strip() for d in drivers.split(",") if d.strip()))
    return policy


_POLICY = _policy_from_env()
_KEEP = object()


def read_policy() -> ReadPolicy:
    """The process-wide policy for reading image files."""
    return _POLICY


def set_read_policy(max_image_mp=_KEEP, drivers=_KEEP) -> ReadPolicy:
    """Change how image files are read, for the whole process; returns the previous policy (pass its fields
    back to restore it, or use :func:`reading`). ``max_image_mp``: megapixels of a whole-image read (0 or
    None = no limit). ``drivers``: GDAL driver names a file's content may be (default :data:`SAFE_DRIVERS`;
    None = anything GDAL opens, e.g. VRT: only for trusted files)."""
    global _POLICY
    previous = _POLICY
    if max_image_mp is not _KEEP:
        if max_image_mp is not None and not isinstance(max_image_mp, (int, float)):
            raise TypeError(f"max_image_mp must be a number of megapixels, got {max_image_mp!r}")
        _POLICY = replace(_POLICY, max_pixels=mp_to_pixels(max_image_mp))
    if drivers is not _KEEP:
        _POLICY = replace(_POLICY, drivers=None if drivers is None else tuple(drivers))
    return previous


@contextmanager
def reading(policy: ReadPolicy):
    """Use ``policy`` inside a ``with`` block (process-wide: threads of ``encode`` see it too, and so do worker
    processes started inside the block, through ``$GEOVEC_MAX_IMAGE_MP`` / ``$GEOVEC_RASTER_DRIVERS``)."""
    global _POLICY
    previous, _POLICY = _POLICY, policy
    env = {"GEOVEC_MAX_IMAGE_MP": str(policy.max_pixels / 1e6 if policy.max_pixels else 0),
           "GEOVEC_RASTER_DRIVERS": "any" if policy.drivers is None else ",".join(policy.drivers)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield policy
    finally:
        _POLICY = previous
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _resolve(max_pixels, drivers) -> tuple[int | None, tuple[str, ...] | None]:
    return (_POLICY.max_pixels if max_pixels is _KEEP else max_pixels,
            _POLICY.drivers if drivers is _KEEP else (None if drivers is None else tuple(drivers)))


def sniff_format(path: str | os.PathLike) -> str | None:
    """The GDAL driver name of a file's content from its magic bytes (one of :data:`SAFE_DRIVERS`), or None."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "GTiff"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    return None


def check_format(path: str | os.PathLike, drivers: tuple[str, ...] | None) -> str | None:
    """The driver to open ``path`` with under ``drivers`` (None: let GDAL / Pillow pick); raises
    :class:`GeoVecInputError` for content that is not an allowed format."""
    if drivers is None:
        return None
    try:
        fmt = sniff_format(path)
        if fmt is None:
            with open(path, "rb") as f:
                head = f.read(64)
    except OSError as e:
        raise GeoVecInputError(f"cannot open file: {e.strerror or e}", source=str(path)) from None
    if fmt is not None and fmt in drivers:
        return fmt
    allowed = "/".join(drivers)
    if fmt is not None:
        problem = f"refused: the file holds {fmt} content; only {allowed} files are opened"
    elif not head:
        problem = "cannot decode image: the file is empty"
    elif head.lstrip()[:1] == b"<":
        problem = (f"refused: the file holds XML (e.g. a GDAL VRT, which reads rasters from other files), "
                   f"not a {allowed} image")
    else:
        problem = f"cannot decode image: not a {allowed} file (unrecognised content)"
    raise GeoVecInputError(problem, source=str(path))


def open_dataset(path: str | os.PathLike, drivers=_KEEP):
    """An open rasterio dataset of ``path``, restricted to the policy's drivers (picked from the content); the
    caller closes it (or use :func:`open_raster`)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    _, drivers = _resolve(_KEEP, drivers)
    driver = check_format(path, drivers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, driver=driver)


@contextmanager
def open_raster(path: str | os.PathLike, drivers=_KEEP):
    """``rasterio.open`` restricted to the policy's drivers (the driver is picked from the content)."""
    with open_dataset(path, drivers) as ds:
        yield ds


def check_pixels(width: int, height: int, max_pixels: int | None, source: str | None = None) -> None:
    """GeoVecInputError when a ``width`` x ``height`` whole-image read exceeds ``max_pixels``."""
    if max_pixels is not None and width * height > max_pixels:
        raise GeoVecInputError(
            f"image is {width}x{height} = {width * height / 1e6:.3g} megapixels, above the limit of "
            f"{max_pixels / 1e6:g} for reading a whole image (raise it with --max-image-mp or "
            "geovec.inputs.set_read_policy(max_image_mp=...), or index the file in chips with geovec index build)",
            source=source)


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


@dataclass
class RasterImage:
    """An image decoded to ``pixels`` (H, W, 3) uint8 RGB, with its georeference when the file has one."""

    pixels: np.ndarray
    georef: GeoRef | None = None
    source: str | None = None
    nodata_fraction: float = 0.0  # share of pixels the file marks invalid (nodata value, alpha, mask, NaN): black

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class BandSelection:
    """An image with the bands to show as R, G, B (1-based), what an item's ``bands`` key makes of its image:
    ``{"image": "scene.tif", "bands": [8, 4, 3]}``. Read lazily, like a path (:func:`read_image`)."""

    source: Any
    bands: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "bands", check_bands(self.bands))


def select_bands(array: np.ndarray, bands: tuple[int, ...] | None) -> np.ndarray:
    """Bands (1-based) of an (H, W[, C]) array."""
    if not bands:
        return array
    a = array[..., None] if array.ndim == 2 else array
    check_bands(bands, a.shape[2])
    return a[..., [b - 1 for b in bands]]


def scale_to_uint8(array: np.ndarray, lo, hi) -> np.ndarray:
    """Linear display scaling to uint8: ``lo`` -> 0, ``hi`` -> 255 (clipped, rounded); non-finite values -> 0.

    ``lo`` / ``hi`` are scalars or one value per band (the last axis). The one scaling every raster path uses:
    a fixed sensor scale (:data:`TRUE_COLOUR_MAX_DN`), a per-raster stretch (:func:`raster_stretch`) and the
    per-array stretch of :func:`to_uint8`; the benchmark's Sentinel-2 chips (:mod:`geovec.data.geo`) too."""
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    lo = np.asarray(lo, np.float32) if np.ndim(lo) else lo
    hi = np.asarray(hi, np.float32) if np.ndim(hi) else hi
    span = np.where(np.asarray(hi) > np.asarray(lo), np.asarray(hi) - np.asarray(lo), 1.0)
    span = span.astype(np.float32) if np.ndim(span) else float(span)
    scaled = np.clip((a - lo) / span * 255.0, 0, 255)
    if np.issubdtype(scaled.dtype, np.floating):
        scaled = np.where(np.isfinite(scaled), scaled, 0)
    return scaled.round().astype(np.uint8)


def stretch_limits(array: np.ndarray, ignore=None) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per band (last axis) of the 2-98 percentile stretch of ``array`` (finite values, ``ignore``
    = a nodata value left out); integer data that already fits 0-255 keeps its values (0, 255)."""
    channels = array.shape[-1]
    lo, hi = np.zeros(channels, np.float32), np.full(channels, 255.0, np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.size and array.min() >= 0 and array.max() <= 255:
        return lo, hi
    for c in range(channels):  # band by band: the float copy is one band, not the whole raster
        band = array[..., c].astype(np.float32).ravel()
        keep = np.isfinite(band)
        if ignore is not None and np.isfinite(ignore):
            keep &= band != np.float32(ignore)
        valid = band[keep]
        if valid.size == 0:
            lo[c], hi[c] = 0.0, 1.0
            continue
        lo[c], hi[c] = np.percentile(valid, [2, 98])
        if hi[c] <= lo[c]:
            hi[c] = lo[c] + 1.0
    return lo, hi


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an (H, W, C) array of any numeric type to uint8.

    8-bit data is kept as is. Integer data that already fits 0-255 is cast. Anything wider (12/16-bit
    reflectance, floats) gets a per-band 2-98 percentile stretch of this array, the usual display scaling for
    satellite imagery, so dark 16-bit scenes do not collapse to black. (A raster *file* is scaled once for all
    its chips instead: :func:`read_tiff`.)
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    lo, hi = stretch_limits(array)
    return scale_to_uint8(array, lo, hi)


def to_rgb(array: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W, 3): grey is replicated, extra bands (alpha, NIR) are dropped."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {array.shape}")
    if array.shape[2] == 1 or array.shape[2] == 2:
        array = np.repeat(array[..., :1], 3, axis=2)
    rgb = array[..., :3]
    if np.issubdtype(rgb.dtype, np.floating) and rgb.size and not np.isfinite(rgb).any():
        raise ValueError(f"{NODATA_PROBLEM}: every value is NaN or infinite (nodata)")
    return np.ascontiguousarray(to_uint8(rgb))


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


def _georef(ds) -> GeoRef | None:
    return georef_from(ds.crs, ds.transform, ds.width, ds.height)


def read_georef(path: str | os.PathLike, drivers=_KEEP) -> GeoRef | None:
    """Only the georeference of a raster file (no pixels read)."""
    with open_raster(path, drivers) as ds:
        return _georef(ds)


# --- which bands are red, green, blue, and how a product is scaled -------------------------------------------
# Sentinel-2 L1C / L2A digital numbers are reflectance x 10,000 (no offset is applied: processing baseline 04.00+
# L2A products add 1000, which darkens them a little). True colour shows reflectance 0-0.3 as 0-255, so
# DN 0-3000: one fixed scale for every chip of every Sentinel-2 product (also the benchmark's geo chips,
# geovec.data.geo). Landsat 8/9 Collection 2 uses its own fixed per-level scale and offset, to the same 0-0.3.
S2_QUANTIFICATION = 10_000.0  # Sentinel-2 DN per unit reflectance
TRUE_COLOUR_MAX_REFLECTANCE = 0.3  # reflectance shown as 255 in true colour (brighter saturates)
TRUE_COLOUR_MAX_DN = 3000.0  # = S2_QUANTIFICATION * TRUE_COLOUR_MAX_REFLECTANCE: Sentinel-2 DN shown as 255

S2_L1C_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S2_L2A_BANDS = tuple(b for b in S2_L1C_BANDS if b != "B10")  # 12 bands: L2A has no cirrus band
S2_10_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")  # the 10 m + 20 m bands (So2Sat)
S2_BAND_ORDERS = {13: S2_L1C_BANDS, 12: S2_L2A_BANDS, 10: S2_10_BANDS}
# Landsat 8/9 Collection 2: reflectance = DN * scale + offset (the same for every scene of a level)
LANDSAT_SCALE = {"L2": (2.75e-5, -0.2), "L1": (2.0e-5, -0.1)}
STRETCH_SAMPLE_PIXELS = 1 << 20  # pixels a per-raster stretch is computed from (overview or decimated sample)

# sensor band names (B4, B04, B8A, SR_B4, B04_10m), not generic numbering ("Band 4" of a NAIP R,G,B,NIR file)
_BAND_NAME = re.compile(r"^(?:(?:SR|TOA)_)?B0?(\d{1,2}A?)(?![0-9A-Z])")


@dataclass(frozen=True)
class RasterProduct:
    """What a raster file is, for display: ``rgb`` the 1-based bands shown as R, G, B, ``sensor`` (None when not
    recognised), ``scale`` the fixed DN range ``(lo, hi)`` shown as 0-255 for a known sensor (None: one
    2-98 % stretch is computed per raster from its overviews or a sample), ``how`` what it was recognised by."""

    rgb: tuple[int, ...]
    sensor: str | None = None
    scale: tuple[float, float] | None = None
    how: str = "default"


def _band_names(ds) -> list[str | None]:
    """Normalised band names from the band descriptions (``B04``, ``B4``, ``SR_B4``, ``B8A``, ``red``...)."""
    names = []
    for d in ds.descriptions:
        text = (d or "").strip().upper()
        m = _BAND_NAME.match(text)
        if m:
            names.append("B" + m.group(1))
        elif text in ("RED", "GREEN", "BLUE", "NIR"):
            names.append(text)
        else:
            names.append(None)
    return names


def _landsat_level(ds, path) -> str | None:
    """``"L1"`` / ``"L2"`` for a Landsat 8/9 product (by its tags, band descriptions or product-id file name)."""
    text = " ".join([Path(str(path)).name.upper()] + [f"{k}={v}".upper() for k, v in ds.tags().items()]
                    + [(d or "").upper() for d in ds.descriptions])
    if not (re.search(r"\bL[COT]0?[89]_", text) or re.search(r"LANDSAT[ _-]?[89]", text)):
        return None
    return "L2" if re.search(r"L2S[PR]|\bSR_B|_SR\b|SURFACE_REFLECTANCE", text) else "L1"


def _is_sentinel2(ds, path) -> bool:
    text = " ".join([Path(str(path)).name.upper()] + [f"{k}={v}".upper() for k, v in ds.tags().items()])
    return bool(re.search(r"SENTINEL[ _-]?2|\bS2[ABC]?_?MSI|\bS2[ABC]_", text))


def detect_product(ds, path: str | os.PathLike | None = None) -> RasterProduct:
    """The RGB bands and scaling of an open rasterio dataset (header only, no pixels read).

    In order: band descriptions naming B4 / B3 / B2 (Sentinel-2 and Landsat 8/9 both call red, green, blue
    so) or red / green / blue; RGB colour interpretation; a Sentinel-2 band order from the band count of an
    integer raster (13 = L1C, 12 = L2A without B10, 10 = the 10 m + 20 m bands B2-B8A, B11, B12); a Landsat 8/9
    product (tags or file name; band n = Bn); else the first three bands (or one grey band). Sentinel-2 and
    Landsat integer products get their fixed reflectance scale; anything else is stretched once per raster."""
    from rasterio.enums import ColorInterp

    dtype = np.dtype(ds.dtypes[0])
    integer = np.issubdtype(dtype, np.integer) and dtype.itemsize > 1  # digital numbers (8-bit data is shown as is)
    names = _band_names(ds)
    landsat = _landsat_level(ds, path)
    s2 = landsat is None and (_is_sentinel2(ds, path) or "B8A" in names)
    rgb, how = None, None
    for wanted in (("B4", "B3", "B2"), ("RED", "GREEN", "BLUE")):
        if all(w in names for w in wanted):
            rgb, how = tuple(names.index(w) + 1 for w in wanted), "band descriptions"
            break
    interp = list(ds.colorinterp)
    if rgb is None and all(c in interp for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)):
        rgb = tuple(interp.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue))
        how = "colour interpretation"
    if rgb is None and landsat is not None and ds.count >= 4:
        rgb, how = (4, 3, 2), f"Landsat 8/9 {landsat} band order"
    if rgb is None and landsat is None and integer and ds.count in S2_BAND_ORDERS:
        order = S2_BAND_ORDERS[ds.count]
        rgb, how, s2 = tuple(order.index(b) + 1 for b in ("B4", "B3", "B2")), f"Sentinel-2 {ds.count}-band order", True
    if rgb is None:
        rgb, how = ((1, 2, 3), "first three bands") if ds.count >= 3 else ((1,), "one grey band")
    sensor = scale = None
    if landsat is not None:
        sensor = f"Landsat 8/9 {landsat}"
        if integer:
            k, offset = LANDSAT_SCALE[landsat]
            scale = ((0.0 - offset) / k, (TRUE_COLOUR_MAX_REFLECTANCE - offset) / k)
    elif s2:
        sensor = {13: "Sentinel-2 L1C", 12: "Sentinel-2 L2A"}.get(ds.count, "Sentinel-2")
        if integer:
            scale = (0.0, TRUE_COLOUR_MAX_DN)
    return RasterProduct(rgb=rgb, sensor=sensor, scale=scale, how=how)


def describe_raster(path: str | os.PathLike, drivers=_KEEP) -> RasterProduct:
    """:func:`detect_product` of a file: which bands it shows as RGB and how it is scaled."""
    _, drivers = _resolve(_KEEP, drivers)
    with open_raster(path, drivers) as ds:
        return detect_product(ds, path)


def check_bands(bands, count: int | None = None) -> tuple[int, ...]:
    """``bands`` as a tuple of 1-based band numbers (a list / tuple of positive ints), each <= ``count``."""
    if isinstance(bands, (str, bytes)) or not isinstance(bands, (list, tuple, np.ndarray)) or not len(bands):
        raise GeoVecInputError(f"bands must be a list of 1-based band numbers like [4, 3, 2], got {bands!r}"[:200])
    out = []
    for b in bands:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, np.integer)) or b < 1:
            raise GeoVecInputError(f"bands must be 1-based band numbers (integers >= 1), got {list(bands)!r}"[:200])
        if count is not None and b > count:
            raise GeoVecInputError(f"band {int(b)} requested but the raster has {count} band(s)")
        out.append(int(b))
    if len(out) not in (1, 3):
        raise GeoVecInputError(f"bands picks 1 (grey) or 3 (R, G, B) bands, got {len(out)}: {out}")
    return tuple(out)


def _rgb_band_indexes(ds, bands: tuple[int, ...] | None, path=None) -> list[int]:
    if bands:
        return list(check_bands(bands, ds.count))
    return list(detect_product(ds, path).rgb)


def _sample(ds, idx: list[int]) -> np.ndarray:
    """(C, h, w) values of bands ``idx`` spread over the whole raster, about :data:`STRETCH_SAMPLE_PIXELS`:
    all of a small raster; else a decimated read (GDAL takes it from the overviews when the file has them), or,
    without overviews, a grid of windows (so a huge tiled file is not decoded whole)."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    n = ds.width * ds.height
    if n <= 4 * STRETCH_SAMPLE_PIXELS:
        return ds.read(idx)
    f = (STRETCH_SAMPLE_PIXELS / n) ** 0.5
    if ds.overviews(idx[0]):
        shape = (len(idx), max(1, int(ds.height * f)), max(1, int(ds.width * f)))
        return ds.read(idx, out_shape=shape, resampling=Resampling.nearest)
    grid, size = 8, max(1, int((STRETCH_SAMPLE_PIXELS / 64) ** 0.5))
    parts = []
    for i in range(grid):
        for j in range(grid):
            c = int((j + 0.5) * ds.width / grid - size / 2)
            r = int((i + 0.5) * ds.height / grid - size / 2)
            win = Window(max(0, c), max(0, r), min(size, ds.width), min(size, ds.height))
            parts.append(ds.read(idx, window=win).reshape(len(idx), -1))
    return np.concatenate(parts, axis=1)[:, None, :]


@functools.lru_cache(maxsize=64)
def _cached_stretch(key: tuple, path: str, idx: tuple[int, ...], drivers) -> tuple[tuple[float, ...], tuple[float, ...]]:
    with open_raster(path, drivers) as ds:
        sample = np.moveaxis(_sample(ds, list(idx)), 0, -1)
        lo, hi = stretch_limits(sample, ignore=ds.nodata)
    return tuple(map(float, lo)), tuple(map(float, hi))


def raster_stretch(path: str | os.PathLike, bands: tuple[int, ...], drivers=_KEEP) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per band of the 2-98 % stretch of a whole raster file (computed once per file version and
    bands from an overview or sample, :func:`_sample`), so every chip of the raster is scaled alike."""
    _, drivers = _resolve(_KEEP, drivers)
    st = os.stat(path)
    key = (os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns)
    lo, hi = _cached_stretch(key, os.fspath(path), tuple(bands), drivers)
    return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


def scale_raster(data: np.ndarray, path, bands: list[int], product: RasterProduct, drivers=_KEEP) -> np.ndarray:
    """Display values of pixels read from raster ``path``: ``data`` (H, W, C) in the file's own units (digital
    numbers, reflectance, ...) of its 1-based ``bands`` -> (H, W, C) uint8, 0-255. The scaling is the
    product's (e.g. Sentinel-2 L2A reflectance 0-3000 DN), else the whole file's 2-98 % stretch
    (:func:`raster_stretch`), never per chip, so every chip and map tile of a file looks alike. uint8 data is
    returned as it is, bool as 0 / 255. ``drivers``: the GDAL drivers the file may be opened as to compute
    the stretch (default: those of the current read policy)."""
    if data.dtype == np.uint8:
        return data
    if data.dtype == bool:
        return data.astype(np.uint8) * 255
    if product.scale is not None:
        lo, hi = product.scale
    else:
        lo, hi = raster_stretch(path, tuple(bands), drivers)
    if data.dtype.kind in "iu" and data.dtype.itemsize == 2:
        # 16-bit digital numbers through a lookup table: the same values as scale_to_uint8, one gather per band
        lut = _scale_lut(data.dtype.str, tuple(np.broadcast_to(np.asarray(lo, np.float32), data.shape[-1:]).tolist()),
                         tuple(np.broadcast_to(np.asarray(hi, np.float32), data.shape[-1:]).tolist()))
        codes = data.view(np.uint16)
        out = np.empty(data.shape, np.uint8)
        for c in range(data.shape[-1]):
            np.take(lut[c], codes[..., c], out=out[..., c])
        return out
    return scale_to_uint8(data, lo, hi)


@functools.lru_cache(maxsize=16)
def _scale_lut(dtype: str, lo: tuple[float, ...], hi: tuple[float, ...]) -> np.ndarray:
    """(C, 65536) uint8: :func:`scale_to_uint8` of every value a 16-bit ``dtype`` holds, indexed by its bits."""
    values = np.arange(65536, dtype=np.uint16).view(np.dtype(dtype))
    return np.stack([scale_to_uint8(values, lo[c], hi[c]) for c in range(len(lo))])


def valid_mask(ds, idx: list[int], data: np.ndarray, window=None) -> np.ndarray | None:
    """(H, W) bool: pixels holding data, as GDAL's dataset mask defines it (valid when any band is): not the
    band's declared nodata value, not NaN / infinite, alpha > 0, inside an internal mask. ``data`` is the
    (H, W, C) read of bands ``idx``. None when the file marks no pixel invalid by any of these."""
    from rasterio.enums import ColorInterp, MaskFlags

    invalid = None  # (H, W, C): this band of this pixel holds no data
    nodatavals = [ds.nodatavals[b - 1] for b in idx]
    if any(v is not None for v in nodatavals) or np.issubdtype(data.dtype, np.floating):
        invalid = np.zeros(data.shape, bool)
        for c, nd in enumerate(nodatavals):
            band = data[..., c]
            if np.issubdtype(data.dtype, np.floating):
                invalid[..., c] |= ~np.isfinite(band)
            if nd is not None and not np.isnan(nd):
                invalid[..., c] |= band == np.asarray(nd).astype(data.dtype)
    valid = None if invalid is None else ~invalid.all(axis=-1)
    interp = list(ds.colorinterp)
    extra = None
    if ColorInterp.alpha in interp:
        extra = ds.read(interp.index(ColorInterp.alpha) + 1, window=window) > 0
    elif MaskFlags.per_dataset in ds.mask_flag_enums[idx[0] - 1] and valid is None:
        extra = ds.read_masks(idx[0], window=window) > 0  # an internal / sidecar mask band
    if extra is not None:
        valid = extra if valid is None else valid & extra
    return valid


def read_tiff(
    path: str | os.PathLike,
    bands: tuple[int, ...] | None = None,
    window: tuple[int, int, int, int] | None = None,
    *,
    max_pixels=_KEEP,
    drivers=_KEEP,
    dataset=None,
    georef: bool = True,
) -> RasterImage:
    """Read a (Geo)TIFF with rasterio: its RGB bands (:func:`detect_product`; ``bands`` are 1-based and
    override it), scaled to uint8 the same way for every window of the file (a fixed reflectance scale for a
    known sensor, else one stretch per raster: :func:`raster_stretch`). Pixels the file marks as nodata
    (:func:`valid_mask`) are black and counted in ``nodata_fraction``; a read with no valid pixel is a
    :class:`GeoVecInputError`.

    ``window`` is ``(col_off, row_off, width, height)`` in pixels; the georeference then describes the window
    (``georef=False``: not computed). ``max_pixels`` / ``drivers`` default to the :class:`ReadPolicy`; the pixel
    limit applies to what is read (the window, or the whole raster). ``dataset``: ``path`` already open
    (:func:`open_dataset`), so windows read one after another share GDAL's cache of decoded tiles.
    """
    from contextlib import nullcontext

    from rasterio.windows import Window

    max_pixels, drivers = _resolve(max_pixels, drivers)
    try:
        with (nullcontext(dataset) if dataset is not None else open_raster(path, drivers)) as ds:
            product = detect_product(ds, path)
            idx = list(check_bands(bands, ds.count)) if bands else list(product.rgb)
            win = Window(*window) if window else None
            w, h = (int(window[2]), int(window[3])) if window else (ds.width, ds.height)
            check_pixels(w, h, max_pixels, str(path))
            data = ds.read(idx, window=win)  # (C, H, W)
            transform = ds.window_transform(win) if win is not None else ds.transform
            georef = georef_from(ds.crs, transform, data.shape[2], data.shape[1]) if georef else None
            nodata_fraction = 0.0
            if data.size:
                data = np.moveaxis(data, 0, -1)
                valid = valid_mask(ds, idx, data, win)
                if valid is not None:
                    n_valid = int(np.count_nonzero(valid))
                    if n_valid == 0:
                        raise GeoVecInputError(f"{NODATA_PROBLEM}: every pixel is nodata (the declared nodata "
                                               "value, alpha 0, masked, or NaN)", source=str(path))
                    nodata_fraction = 1.0 - n_valid / valid.size
                data = scale_raster(data, path, idx, product, drivers)
                if nodata_fraction:
                    data = np.where(valid[..., None], data, np.uint8(0))  # one fill, whatever the nodata value
    except GeoVecInputError as e:
        raise e if e.source else GeoVecInputError(e.problem, source=str(path)) from None
    except MemoryError:
        raise GeoVecInputError("not enough memory to read the raster", source=str(path)) from None
    except Exception as e:  # rasterio / GDAL raise several unrelated types for corrupt files
        raise GeoVecInputError(f"cannot read raster: {e}", source=str(path)) from None
    if data.size == 0:
        raise GeoVecInputError("raster is empty (0 pixels)", source=str(path))
    try:
        return RasterImage(to_rgb(data), georef, str(path), nodata_fraction)
    except ValueError as e:
        raise GeoVecInputError(str(e), source=str(path)) from None


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def pil_pixels(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 of a decoded PIL image; 16-bit / 32-bit / float modes are stretched like TIFFs."""
    if im.mode in _HIGH_BIT_MODES:
        return to_rgb(np.asarray(im))
    return np.asarray(im.convert("RGB"))


def read_image(source, bands: tuple[int, ...] | None = None, *, max_pixels=_KEEP, drivers=_KEEP) -> RasterImage:
    """Decode ``source`` (PIL image, numpy (H, W[, C]) array, a file path, or a :class:`BandSelection` of one)
    to a :class:`RasterImage`. ``bands`` (1-based) picks the bands shown as R, G, B (default: a (Geo)TIFF's own,
    :func:`detect_product`; the first three of an array).

    Files are read under the :class:`ReadPolicy` (``max_pixels`` / ``drivers`` override it for this call).
    Raises :class:`GeoVecInputError` (without an index; callers add it) for anything unreadable.
    """
    if isinstance(source, BandSelection):
        return read_image(source.source, bands=source.bands, max_pixels=max_pixels, drivers=drivers)
    if isinstance(source, RasterImage):
        if bands:
            raise GeoVecInputError("bands select bands of a file or an array; this image is already decoded to RGB")
        return source
    if isinstance(source, Image.Image):
        if source.width == 0 or source.height == 0:
            raise GeoVecInputError("image is empty (0 pixels)")
        try:
            pixels = select_bands(np.asarray(source), bands) if bands else pil_pixels(source)
            if bands:
                pixels = to_rgb(pixels)
        except GeoVecInputError:
            raise
        except Exception as e:  # a lazily opened PIL file decodes here
            raise GeoVecInputError(f"cannot decode image: {e}") from None
        return RasterImage(pixels, None, getattr(source, "filename", None) or None)
    if isinstance(source, np.ndarray):
        if source.size == 0:
            raise GeoVecInputError(f"image array is empty (shape {source.shape})")
        if not (np.issubdtype(source.dtype, np.number) or source.dtype == bool):
            raise GeoVecInputError(f"image array has non-numeric dtype {source.dtype}")
        if np.iscomplexobj(source):
            raise GeoVecInputError(f"image array has complex dtype {source.dtype}")
        try:
            return RasterImage(to_rgb(select_bands(np.asarray(source), bands)))
        except ValueError as e:
            raise GeoVecInputError(str(e)) from None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            exists, is_dir = path.exists(), path.is_dir()
        except (OSError, ValueError) as e:
            raise GeoVecInputError(f"cannot use this image path: {e}", source=str(path)) from None
        if not exists:
            raise GeoVecInputError("image file does not exist", source=str(path))
        if is_dir:
            raise GeoVecInputError("image path is a directory, not a file", source=str(path))
        if path.suffix.lower() in TIFF_SUFFIXES:
            return read_tiff(path, bands=bands, max_pixels=max_pixels, drivers=drivers)
        max_pixels, drivers = _resolve(max_pixels, drivers)
        fmt = check_format(path, drivers)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
                with Image.open(path, formats=PIL_FORMATS.get(fmt) if fmt else None) as im:
                    check_pixels(im.width, im.height, max_pixels, str(path))
                    im.load()
                    pixels = to_rgb(select_bands(np.asarray(im), bands)) if bands else pil_pixels(im)
        except GeoVecInputError:
            raise
        except Image.DecompressionBombError as e:
            raise GeoVecInputError(f"image is too large to decode (decompression bomb guard): {e}",
                                   source=str(path)) from None
        except MemoryError:
            raise GeoVecInputError("not enough memory to decode the image", source=str(path)) from None
        except Exception as e:  # Pillow raises many types for malformed files (OSError, SyntaxError, struct.error...)
            raise GeoVecInputError(f"cannot decode image: {e}", source=str(path)) from None
        if pixels.size == 0:
            raise GeoVecInputError("image is empty (0 pixels)", source=str(path))
        return RasterImage(pixels, None, str(path))
    raise GeoVecInputError(f"cannot use a {type(source).__name__} as an image (expected PIL image, array or path)")


def image_size(source, drivers=_KEEP) -> tuple[int, int]:
    """(width, height) without decoding pixels where the format allows it."""
    if isinstance(source, BandSelection):
        return image_size(source.source, drivers)
    if isinstance(source, RasterImage):
        return source.width, source.height
    if isinstance(source, Image.Image):
        return source.size
    if isinstance(source, np.ndarray):
        return int(source.shape[1]), int(source.shape[0])
    path = Path(source)
    _, drivers = _resolve(_KEEP, drivers)
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            with open_raster(path, drivers) as ds:
                return ds.width, ds.height
        except GeoVecInputError:
            raise
        except Exception as e:  # rasterio raises several unrelated types for bad files
            raise GeoVecInputError(f"cannot read raster: {e}", source=str(path)) from None
    fmt = check_format(path, drivers)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=PIL_FORMATS.get(fmt) if fmt else None) as im:
                return im.size
    except Image.DecompressionBombError as e:
        raise GeoVecInputError(f"image is too large to decode (decompression bomb guard): {e}",
                               source=str(path)) from None
    except Exception as e:
        raise GeoVecInputError(f"cannot decode image: {e}", source=str(path)) from None
