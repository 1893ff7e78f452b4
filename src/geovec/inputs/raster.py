"""Reading images (PIL, numpy, JPEG/PNG/TIFF/GeoTIFF paths) into 8-bit RGB plus optional georeference."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from geovec.inputs.errors import GeoVecInputError

TIFF_SUFFIXES = {".tif", ".tiff", ".gtif", ".geotiff"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"} | TIFF_SUFFIXES


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
    a = array.astype(np.float32)
    finite = np.isfinite(a)
    if np.issubdtype(array.dtype, np.integer) and a.size and a.min() >= 0 and a.max() <= 255:
        return a.astype(np.uint8)
    out = np.zeros(a.shape, dtype=np.uint8)
    for c in range(a.shape[2]):
        band = a[..., c]
        valid = band[finite[..., c]]
        if valid.size == 0:
            continue
        lo, hi = np.percentile(valid, [2, 98])
        if hi <= lo:
            hi = lo + 1.0
        scaled = (np.nan_to_num(band, nan=lo) - lo) / (hi - lo) * 255.0
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
    return np.ascontiguousarray(to_uint8(array[..., :3]))


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


def read_georef(path: str | os.PathLike) -> GeoRef | None:
    """Only the georeference of a raster file (no pixels read)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
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
) -> RasterImage:
    """Read a (Geo)TIFF with rasterio: RGB bands (or the first three; ``bands`` are 1-based), scaled to uint8.

    ``window`` is ``(col_off, row_off, width, height)`` in pixels; the georeference then describes the window.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.windows import Window

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                idx = _rgb_band_indexes(ds, bands)
                win = Window(*window) if window else None
                data = ds.read(idx, window=win)  # (C, H, W)
                transform = ds.window_transform(win) if win is not None else ds.transform
                georef = georef_from(ds.crs, transform, data.shape[2], data.shape[1])
    except GeoVecInputError:
        raise
    except (RasterioIOError, OSError, ValueError) as e:
        raise GeoVecInputError(f"cannot read raster: {e}", source=str(path)) from None
    if data.size == 0:
        raise GeoVecInputError("raster is empty (0 pixels)", source=str(path))
    return RasterImage(to_rgb(np.moveaxis(data, 0, -1)), georef, str(path))


def read_image(source, bands: tuple[int, ...] | None = None) -> RasterImage:
    """Decode ``source`` (PIL image, numpy (H, W[, C]) array, or a file path) to a :class:`RasterImage`.

    Raises :class:`GeoVecInputError` (without an index; callers add it) for anything unreadable.
    """
    if isinstance(source, RasterImage):
        return source
    if isinstance(source, Image.Image):
        if source.width == 0 or source.height == 0:
            raise GeoVecInputError("image is empty (0 pixels)")
        return RasterImage(np.asarray(source.convert("RGB")), None, getattr(source, "filename", None) or None)
    if isinstance(source, np.ndarray):
        if source.size == 0:
            raise GeoVecInputError(f"image array is empty (shape {source.shape})")
        if not (np.issubdtype(source.dtype, np.number) or source.dtype == bool):
            raise GeoVecInputError(f"image array has non-numeric dtype {source.dtype}")
        try:
            return RasterImage(to_rgb(np.asarray(source)))
        except ValueError as e:
            raise GeoVecInputError(str(e)) from None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise GeoVecInputError("image file does not exist", source=str(path))
        if path.is_dir():
            raise GeoVecInputError("image path is a directory, not a file", source=str(path))
        if path.suffix.lower() in TIFF_SUFFIXES:
            return read_tiff(path, bands=bands)
        try:
            with Image.open(path) as im:
                im.load()
                pixels = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise GeoVecInputError(f"cannot decode image: {e}", source=str(path)) from None
        if pixels.size == 0:
            raise GeoVecInputError("image is empty (0 pixels)", source=str(path))
        return RasterImage(pixels, None, str(path))
    raise GeoVecInputError(f"cannot use a {type(source).__name__} as an image (expected PIL image, array or path)")


def image_size(source) -> tuple[int, int]:
    """(width, height) without decoding pixels where the format allows it."""
    if isinstance(source, RasterImage):
        return source.width, source.height
    if isinstance(source, Image.Image):
        return source.size
    if isinstance(source, np.ndarray):
        return int(source.shape[1]), int(source.shape[0])
    path = Path(source)
    if path.suffix.lower() in TIFF_SUFFIXES:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as ds:
                    return ds.width, ds.height
        except Exception as e:  # rasterio raises several unrelated types for bad files
            raise GeoVecInputError(f"cannot read raster: {e}", source=str(path)) from None
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise GeoVecInputError(f"cannot decode image: {e}", source=str(path)) from None
