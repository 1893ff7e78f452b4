"""Which image files are opened, and how much of one is read whole: the process-wide :class:`ReadPolicy`.

* **formats**: a file is opened only when its *content* (magic bytes, not its name) is one of
  :data:`SAFE_DRIVERS` (GTiff, PNG, JPEG, WebP, BMP), with exactly that GDAL driver / Pillow plugin. A ``.tif``
  that is really a GDAL VRT (XML that reads rasters from anywhere on disk) or any other format is refused.
* **pixels**: an image read *whole* from a file may have at most ``max_pixels`` pixels (width x height,
  default :data:`DEFAULT_MAX_IMAGE_MP` megapixels; env ``GEOVEC_MAX_IMAGE_MP``; 0 = no limit), checked from
  the header before any pixel is decoded. Windowed reads (chips) are limited by their window only.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace

from geovec.inputs.errors import GeoVecInputError

# formats (GDAL driver names) a file may be opened as, recognised by content; they never read other files
SAFE_DRIVERS = ("GTiff", "PNG", "JPEG", "WEBP", "BMP")
# the Pillow format names of each of those drivers (Pillow opens a file only as one of them)
PIL_FORMATS = {"GTiff": ("TIFF",), "PNG": ("PNG",), "JPEG": ("JPEG", "MPO"), "WEBP": ("WEBP",), "BMP": ("BMP",)}
DEFAULT_MAX_IMAGE_MP = 100.0
FROM_POLICY = object()  # default of a reader's max_pixels / drivers: the current policy's value


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


def policy_from_env() -> ReadPolicy:
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


_POLICY = policy_from_env()


def read_policy() -> ReadPolicy:
    """The process-wide policy for reading image files."""
    return _POLICY


def set_read_policy(max_image_mp=FROM_POLICY, drivers=FROM_POLICY) -> ReadPolicy:
    """Change how image files are read, for the whole process; returns the previous policy (pass its fields
    back to restore it, or use :func:`reading`). ``max_image_mp``: megapixels of a whole-image read (0 or
    None = no limit). ``drivers``: GDAL driver names a file's content may be (default :data:`SAFE_DRIVERS`;
    None = anything GDAL opens, e.g. VRT: only for trusted files)."""
    global _POLICY
    previous = _POLICY
    if max_image_mp is not FROM_POLICY:
        if max_image_mp is not None and not isinstance(max_image_mp, (int, float)):
            raise TypeError(f"max_image_mp must be a number of megapixels, got {max_image_mp!r}")
        _POLICY = replace(_POLICY, max_pixels=mp_to_pixels(max_image_mp))
    if drivers is not FROM_POLICY:
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


def resolve_policy(max_pixels, drivers) -> tuple[int | None, tuple[str, ...] | None]:
    """(max_pixels, drivers) of a read: the arguments, or the current policy's where they are :data:`FROM_POLICY`."""
    return (_POLICY.max_pixels if max_pixels is FROM_POLICY else max_pixels,
            _POLICY.drivers if drivers is FROM_POLICY else (None if drivers is None else tuple(drivers)))


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


def open_dataset(path: str | os.PathLike, drivers=FROM_POLICY):
    """An open rasterio dataset of ``path``, restricted to the policy's drivers (picked from the content); the
    caller closes it (or use :func:`open_raster`)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    _, drivers = resolve_policy(FROM_POLICY, drivers)
    driver = check_format(path, drivers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, driver=driver)


@contextmanager
def open_raster(path: str | os.PathLike, drivers=FROM_POLICY):
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
