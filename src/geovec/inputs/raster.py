"""Reading images (PIL, numpy, JPEG/PNG/TIFF/GeoTIFF paths) into 8-bit RGB plus optional georeference, under
the :class:`~geovec.inputs.policy.ReadPolicy`. Decompression bombs, too-large images and rasters without a valid
pixel are a :class:`GeoVecInputError`, like any bad file."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from geovec.inputs.bands import BandSelection, check_bands, detect_product, select_bands
from geovec.inputs.errors import GeoVecInputError
from geovec.inputs.georef import GeoRef, georef_from
from geovec.inputs.policy import FROM_POLICY, PIL_FORMATS, check_format, check_pixels, open_raster, resolve_policy
from geovec.inputs.scaling import NODATA_PROBLEM, scale_raster, to_rgb

TIFF_SUFFIXES = {".tif", ".tiff", ".gtif", ".geotiff"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"} | TIFF_SUFFIXES


@dataclass
class RasterImage:
    """An image decoded to ``pixels`` (H, W, 3) uint8 RGB, with its georeference when the file has one."""

    pixels: np.ndarray
    georef: GeoRef | None = None
    source: str | None = None
    nodata_fraction: float = 0.0  # share of pixels the file marks invalid (nodata value, alpha, mask, NaN): black
    valid: np.ndarray | None = None  # (H, W) bool, False where a PNG / WebP / PIL image is transparent; None: all valid

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


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
    max_pixels=FROM_POLICY,
    drivers=FROM_POLICY,
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
    (:func:`~geovec.inputs.policy.open_dataset`), so windows read one after another share GDAL's cache of decoded tiles.
    """
    from contextlib import nullcontext

    from rasterio.windows import Window

    max_pixels, drivers = resolve_policy(max_pixels, drivers)
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


def alpha_valid(im: Image.Image) -> np.ndarray | None:
    """(H, W) bool, False where the image is fully transparent (an alpha channel, or a palette / grey / RGB
    transparency colour); None where every pixel is opaque."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = im.getchannel("A")
    elif "transparency" in im.info and im.mode in ("P", "L", "RGB"):
        alpha = im.convert("RGBA").getchannel("A")
    else:
        return None
    valid = np.asarray(alpha) > 0
    return None if valid.all() else valid


def pil_raster(im: Image.Image, source: str | None) -> RasterImage:
    """A decoded PIL image as a :class:`RasterImage`: transparent pixels are nodata, as a TIFF's alpha band is
    (black, counted in ``nodata_fraction``; an image with no opaque pixel is an error)."""
    pixels = pil_pixels(im)
    valid = alpha_valid(im)
    if valid is None:
        return RasterImage(pixels, None, source)
    if not valid.any():
        raise GeoVecInputError(f"{NODATA_PROBLEM}: every pixel is transparent (alpha 0)", source=source)
    pixels = np.where(valid[..., None], pixels, np.uint8(0))
    return RasterImage(pixels, None, source, float(1.0 - valid.mean()), valid)


def read_image(source, bands: tuple[int, ...] | None = None, *, max_pixels=FROM_POLICY, drivers=FROM_POLICY) -> RasterImage:
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
            name = getattr(source, "filename", None) or None
            if not bands:
                return pil_raster(source, name)
            pixels = to_rgb(select_bands(np.asarray(source), bands))
        except GeoVecInputError:
            raise
        except Exception as e:  # a lazily opened PIL file decodes here
            raise GeoVecInputError(f"cannot decode image: {e}") from None
        return RasterImage(pixels, None, name)
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
        max_pixels, drivers = resolve_policy(max_pixels, drivers)
        fmt = check_format(path, drivers)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
                with Image.open(path, formats=PIL_FORMATS.get(fmt) if fmt else None) as im:
                    check_pixels(im.width, im.height, max_pixels, str(path))
                    im.load()
                    if bands:
                        pixels = to_rgb(select_bands(np.asarray(im), bands))
                    else:
                        decoded = pil_raster(im, str(path))
                        pixels = decoded.pixels
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
        return decoded if not bands else RasterImage(pixels, None, str(path))
    raise GeoVecInputError(f"cannot use a {type(source).__name__} as an image (expected PIL image, array or path)")


def image_size(source, drivers=FROM_POLICY) -> tuple[int, int]:
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
    _, drivers = resolve_policy(FROM_POLICY, drivers)
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
