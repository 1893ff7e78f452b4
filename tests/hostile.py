"""Hostile inputs for the reliability tests: decompression bombs, VRTs disguised as TIFFs, all-NaN rasters,
corrupt files. All tiny on disk."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A ~70-byte PNG whose header declares ``width`` x ``height`` RGB (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def write_bomb(path: Path, width: int = 20000, height: int = 20000) -> Path:
    path.write_bytes(bomb_png(width, height))
    return path


def write_vrt_as_tif(path: Path, target: Path, size: int = 8) -> Path:
    """A GDAL VRT (XML) named ``*.tif`` whose pixels come from ``target``, wherever that lies."""
    path.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><VRTRasterBand dataType="Byte" band="1">'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{target}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>")
    return path


def write_tiff(path: Path, data: np.ndarray, **profile) -> Path:
    """(C, H, W) ``data`` as a (non-georeferenced unless ``profile`` says so) GTiff."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    c, h, w = data.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype, **profile) as ds:
            ds.write(data)
    return path


def write_nan_tiff(path: Path, size: int = 16) -> Path:
    return write_tiff(path, np.full((3, size, size), np.nan, np.float32))


def write_sparse_big_tiff(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A real ``width`` x ``height`` GTiff that is tiny on disk (tiled, sparse: no tile written)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                           tiled=True, blockxsize=256, blockysize=256, SPARSE_OK=True) as ds:
            ds.write(np.full((3, 256, 256), 7, np.uint8), window=((0, 256), (0, 256)))
    return path


def write_corrupt_jpg(path: Path) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return path
