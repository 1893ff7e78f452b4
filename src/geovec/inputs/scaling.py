"""Display scaling to 8-bit RGB: a fixed range, a 2-98 % stretch per array or once per raster file (so every
chip and map tile of a file looks alike), and 16-bit lookup tables."""

from __future__ import annotations

import functools
import os

import numpy as np

from geovec.inputs.bands import RasterProduct
from geovec.inputs.policy import FROM_POLICY, open_raster, resolve_policy

NODATA_PROBLEM = "image has no valid pixel"  # start of the error for all-nodata / all-NaN rasters
STRETCH_SAMPLE_PIXELS = 1 << 20  # pixels a per-raster stretch is computed from (overview or decimated sample)


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
    its chips instead: :func:`geovec.inputs.raster.read_tiff`.)
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


def stretch_sample(ds, idx: list[int]) -> np.ndarray:
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
def _file_stretch(key: tuple, path: str, idx: tuple[int, ...], drivers) -> tuple[tuple[float, ...], tuple[float, ...]]:
    with open_raster(path, drivers) as ds:
        sample = np.moveaxis(stretch_sample(ds, list(idx)), 0, -1)
        lo, hi = stretch_limits(sample, ignore=ds.nodata)
    return tuple(map(float, lo)), tuple(map(float, hi))


def raster_stretch(path: str | os.PathLike, bands: tuple[int, ...], drivers=FROM_POLICY) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per band of the 2-98 % stretch of a whole raster file (computed once per file version and
    bands from an overview or sample, :func:`stretch_sample`), so every chip of the raster is scaled alike."""
    _, drivers = resolve_policy(FROM_POLICY, drivers)
    st = os.stat(path)
    key = (os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns)
    lo, hi = _file_stretch(key, os.fspath(path), tuple(bands), drivers)
    return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


def scale_raster(data: np.ndarray, path, bands: list[int], product: RasterProduct, drivers=FROM_POLICY) -> np.ndarray:
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
        lut = scale_lut(data.dtype.str, tuple(np.broadcast_to(np.asarray(lo, np.float32), data.shape[-1:]).tolist()),
                         tuple(np.broadcast_to(np.asarray(hi, np.float32), data.shape[-1:]).tolist()))
        codes = data.view(np.uint16)
        out = np.empty(data.shape, np.uint8)
        for c in range(data.shape[-1]):
            np.take(lut[c], codes[..., c], out=out[..., c])
        return out
    return scale_to_uint8(data, lo, hi)


@functools.lru_cache(maxsize=16)
def scale_lut(dtype: str, lo: tuple[float, ...], hi: tuple[float, ...]) -> np.ndarray:
    """(C, 65536) uint8: :func:`scale_to_uint8` of every value a 16-bit ``dtype`` holds, indexed by its bits."""
    values = np.arange(65536, dtype=np.uint16).view(np.dtype(dtype))
    return np.stack([scale_to_uint8(values, lo[c], hi[c]) for c in range(len(lo))])
