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

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from geovec.inputs.errors import GeoVecInputError

TIFF_SUFFIXES = {".tif", ".tiff", ".gtif", ".geotiff"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"} | TIFF_SUFFIXES

# formats (GDAL driver names) a file may be opened as, recognised by content; they never read other files
SAFE_DRIVERS = ("GTiff", "PNG", "JPEG", "WEBP", "BMP")
_PIL_FORMATS = {"GTiff": ("TIFF",), "PNG": ("PNG",), "JPEG": ("JPEG", "MPO"), "WEBP": ("WEBP",), "BMP": ("BMP",)}
DEFAULT_MAX_IMAGE_MP = 100.0
NODATA_PROBLEM = "image has no valid pixel"  # start of the error for all-NaN / all-infinite rasters


@dataclass(frozen=True)
class ReadPolicy:
    """How image files are opened: ``max_pixels`` for a whole-image read (None = no limit) and the
    ``drivers`` a file's content may be (None = any format GDAL / Pillow recognise, VRT included)."""

    max_pixels: int | None = int(DEFAULT_MAX_IMAGE_MP * 1e6)
    drivers: tuple[str, ...] | None = SAFE_DRIVERS


def _mp_to_pixels(mp: float | None) -> int | None:
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
            policy = replace(policy, max_pixels=_mp_to_pixels(float(raw)))
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
        _POLICY = replace(_POLICY, max_pixels=_mp_to_pixels(max_image_mp))
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


@contextmanager
def open_raster(path: str | os.PathLike, drivers=_KEEP):
    """``rasterio.open`` restricted to the policy's drivers (the driver is picked from the content)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    _, drivers = _resolve(_KEEP, drivers)
    driver = check_format(path, drivers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, driver=driver) as ds:
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
        """(min_lon, min_lat, max_lon, max_lat)."""
        lons = [p[0] for p in self.footprint]
        lats = [p[1] for p in self.footprint]
        return (min(lons), min(lats), max(lons), max(lats))

    def footprint_wkt(self) -> str:
        ring = ", ".join(f"{x:.7f} {y:.7f}" for x, y in self.footprint)
        return f"POLYGON (({ring}))"


@dataclass
class RasterImage:
    """An image decoded to ``pixels`` (H, W, 3) uint8 RGB, with its georeference when the file has one."""

    pixels: np.ndarray
    georef: GeoRef | None = None
    source: str | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an (H, W, C) array of any numeric type to uint8.

    8-bit data is kept as is. Integer data that already fits 0-255 is cast. Anything wider (12/16-bit
    reflectance, floats) gets a per-band 2-98 percentile stretch, the usual display scaling for
    satellite imagery, so dark 16-bit scenes do not collapse to black.
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer) and array.size and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8)
    out = np.zeros(array.shape, dtype=np.uint8)
    for c in range(array.shape[2]):  # band by band: the float copy is one band, not the whole raster
        band = array[..., c].astype(np.float32)
        finite = np.isfinite(band)
        valid = band[finite]
        if valid.size == 0:
            continue
        lo, hi = np.percentile(valid, [2, 98])
        if hi <= lo:
            hi = lo + 1.0
        scaled = (np.where(finite, band, lo) - lo) / (hi - lo) * 255.0
        out[..., c] = np.clip(scaled, 0, 255).astype(np.uint8)
    return out


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


def georef_from(crs, transform, width: int, height: int) -> GeoRef | None:
    """Centre and footprint in WGS84 of a ``width x height`` pixel grid with an affine ``transform`` in ``crs``."""
    from rasterio.warp import transform as warp_transform

    if crs is None or transform.is_identity:
        return None
    w, h = width, height
    corners_px = [(0, 0), (w, 0), (w, h), (0, h)]
    xs, ys = zip(*[transform @ c for c in corners_px])
    cx, cy = transform @ (w / 2.0, h / 2.0)
    lons, lats = warp_transform(crs, "EPSG:4326", list(xs) + [cx], list(ys) + [cy])
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


def _rgb_band_indexes(ds, bands: tuple[int, ...] | None) -> list[int]:
    if bands:
        for b in bands:
            if not 1 <= b <= ds.count:
                raise GeoVecInputError(f"band {b} requested but the raster has {ds.count} band(s)")
        return list(bands)
    from rasterio.enums import ColorInterp

    interp = list(ds.colorinterp)
    wanted = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in interp for c in wanted):
        return [interp.index(c) + 1 for c in wanted]
    if ds.count >= 3:
        return [1, 2, 3]
    return [1]


def read_tiff(
    path: str | os.PathLike,
    bands: tuple[int, ...] | None = None,
    window: tuple[int, int, int, int] | None = None,
    *,
    max_pixels=_KEEP,
    drivers=_KEEP,
) -> RasterImage:
    """Read a (Geo)TIFF with rasterio: RGB bands (or the first three; ``bands`` are 1-based), scaled to uint8.

    ``window`` is ``(col_off, row_off, width, height)`` in pixels; the georeference then describes the window.
    ``max_pixels`` / ``drivers`` default to the :class:`ReadPolicy`; the pixel limit applies to what is read
    (the window, or the whole raster).
    """
    from rasterio.windows import Window

    max_pixels, drivers = _resolve(max_pixels, drivers)
    try:
        with open_raster(path, drivers) as ds:
            idx = _rgb_band_indexes(ds, bands)
            win = Window(*window) if window else None
            w, h = (int(window[2]), int(window[3])) if window else (ds.width, ds.height)
            check_pixels(w, h, max_pixels, str(path))
            data = ds.read(idx, window=win)  # (C, H, W)
            transform = ds.window_transform(win) if win is not None else ds.transform
            georef = georef_from(ds.crs, transform, data.shape[2], data.shape[1])
    except GeoVecInputError:
        raise
    except MemoryError:
        raise GeoVecInputError("not enough memory to read the raster", source=str(path)) from None
    except Exception as e:  # rasterio / GDAL raise several unrelated types for corrupt files
        raise GeoVecInputError(f"cannot read raster: {e}", source=str(path)) from None
    if data.size == 0:
        raise GeoVecInputError("raster is empty (0 pixels)", source=str(path))
    try:
        return RasterImage(to_rgb(np.moveaxis(data, 0, -1)), georef, str(path))
    except ValueError as e:
        raise GeoVecInputError(str(e), source=str(path)) from None


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _pil_pixels(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 of a decoded PIL image; 16-bit / 32-bit / float modes are stretched like TIFFs."""
    if im.mode in _HIGH_BIT_MODES:
        return to_rgb(np.asarray(im))
    return np.asarray(im.convert("RGB"))


def read_image(source, bands: tuple[int, ...] | None = None, *, max_pixels=_KEEP, drivers=_KEEP) -> RasterImage:
    """Decode ``source`` (PIL image, numpy (H, W[, C]) array, or a file path) to a :class:`RasterImage`.

    Files are read under the :class:`ReadPolicy` (``max_pixels`` / ``drivers`` override it for this call).
    Raises :class:`GeoVecInputError` (without an index; callers add it) for anything unreadable.
    """
    if isinstance(source, RasterImage):
        return source
    if isinstance(source, Image.Image):
        if source.width == 0 or source.height == 0:
            raise GeoVecInputError("image is empty (0 pixels)")
        try:
            pixels = _pil_pixels(source)
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
            return RasterImage(to_rgb(np.asarray(source)))
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
                with Image.open(path, formats=_PIL_FORMATS.get(fmt) if fmt else None) as im:
                    check_pixels(im.width, im.height, max_pixels, str(path))
                    im.load()
                    pixels = _pil_pixels(im)
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
            with Image.open(path, formats=_PIL_FORMATS.get(fmt) if fmt else None) as im:
                return im.size
    except Image.DecompressionBombError as e:
        raise GeoVecInputError(f"image is too large to decode (decompression bomb guard): {e}",
                               source=str(path)) from None
    except Exception as e:
        raise GeoVecInputError(f"cannot decode image: {e}", source=str(path)) from None
