"""A small deterministic model that keeps the encode contract of geovec models (it subclasses
EmbeddingModel, so parsing, instructions, batching and GeoVecInputError indices are the real ones), with
hash-based vectors instead of a network: tests of the index and the server run in milliseconds.

Vector = normalised sum of parts: the exact image pixels (or the boxed crop), the text, and a smooth
function of (lat, lon) (nearby places get similar vectors). Instructions are ignored, so a query with a
chip's exact pixels finds that chip with similarity 1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geovec.inputs import read_image
from geovec.models.base import EmbeddingModel
from geovec.models.config import GeoVecConfig

DIM = 32


def _hash_vec(data: bytes, dim: int = DIM) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


_FREQ = np.random.default_rng(7).standard_normal((DIM // 2, 3)).astype(np.float32) * 4.0


def _place_vec(lat: float, lon: float) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    xyz = np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], np.float32)
    z = _FREQ @ xyz
    return np.concatenate([np.cos(z), np.sin(z)]).astype(np.float32)


class FakeGeoModel(EmbeddingModel):
    def __init__(self, name: str = "fake-geo", revision: str = "test", fail_after_batches: int | None = None):
        super().__init__()
        self.config = GeoVecConfig(name=name, revision=revision, embed_dim=DIM)
        self._dummy = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.fail_after_batches = fail_after_batches
        self.batches = 0
        self.items_embedded = 0

    def prepare(self, item):
        v = np.zeros(DIM, np.float32)
        if item.image is not None:
            px = read_image(item.image).pixels
            if item.boxes:
                for x1, y1, x2, y2 in item.boxes:
                    v += _hash_vec(px[int(y1):int(y2), int(x1):int(x2)].tobytes())
            else:
                v += _hash_vec(px.tobytes())
        if item.text is not None:
            v += _hash_vec(item.text.encode())
        if item.lat is not None:
            v += 3.0 * _place_vec(item.lat, item.lon)
        return torch.from_numpy(v)

    def embed_prepared(self, prepared):
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches:
            raise KeyboardInterrupt("simulated interruption")
        self.batches += 1
        self.items_embedded += len(prepared)
        return torch.stack(list(prepared))


def write_geotiff(path: Path, width: int, height: int, crs: str, origin: tuple[float, float], pixel_size: float,
                  bands: int = 3, seed: int = 0, dtype: str = "uint8", tags: dict | None = None) -> Path:
    """A north-up GeoTIFF with random pixels; ``origin`` is the top-left corner (x, y) in ``crs`` units."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    hi = 255 if dtype == "uint8" else 4000
    data = rng.integers(0, hi, size=(bands, height, width)).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands, dtype=dtype, crs=crs,
                       transform=from_origin(origin[0], origin[1], pixel_size, pixel_size)) as ds:
        ds.write(data)
        if tags:
            ds.update_tags(**tags)
    return path


def make_scenes(d: Path) -> Path:
    """Three GeoTIFFs (UTM 31N, UTM 32N, Web Mercator, ~52 N 6 E) and one PNG in folder ``d``."""
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    # 31N scene near its eastern zone edge (~5.9 E), 32N scene near its western edge (~6.1 E), both ~52 N
    write_geotiff(d / "utm31.tif", 300, 200, "EPSG:32631", (700_000, 5_770_000), 10.0, seed=1,
                  tags={"TIFFTAG_DATETIME": "2024:06:01 10:30:00"})
    write_geotiff(d / "utm32.tif", 256, 256, "EPSG:32632", (290_000, 5_770_000), 10.0, seed=2)
    write_geotiff(d / "merc.tif", 128, 128, "EPSG:3857", (580_000, 6_800_000), 20.0, seed=3, bands=4, dtype="uint16")
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (100, 150, 3)).astype(np.uint8)).save(d / "plain.png")
    return d


def make_fake_model():
    """Zero-argument factory (what Ray actors call)."""
    return FakeGeoModel()


def write_dateline_scenes(folder):
    """Two rasters straddling 180 degrees near 1.5 N, chipped at 32 px into 3 x 2 and 3 x 1 chips whose middle
    column crosses it: a UTM zone 1 scene (x 150-180 km: -180 lies near 171 km) and an EPSG:4326 raster whose
    grid runs from 179.5 to 180.5 degrees (longitudes past 180 in the file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_geotiff(folder / "utm01.tif", 96, 64, "EPSG:32601", (150_000, 180_000), 312.5, seed=5)
    write_geotiff(folder / "wgs84.tif", 96, 32, "EPSG:4326", (179.5, 2.0), 1 / 96, seed=6)
    return folder
