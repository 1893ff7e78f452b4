"""Sensor and resolution simulation: a training image as another sensor would have seen it.

RSICD's Google Earth crops are 0.5-8 m imagery with saturated, sharp colour; most users' imagery is Sentinel-2
(10 m, true colour stretched from reflectance, hazy and low in contrast) or aerial orthophotos. :func:`simulate`
renders one seeded variant of an image:

1. **ground sampling distance**: a target GSD drawn log-uniformly from ``gsd_range`` (0.5-30 m); the image is
   downsampled by ``target / source_gsd`` (area averaging, what a coarser detector integrates) and upsampled
   back to its size (bilinear, what a model's resize does to a 64 px Sentinel-2 patch);
2. **optics**: a Gaussian blur (point-spread function), sigma 0-1 px at the output size;
3. **radiometry**: a Sentinel-2-like true-colour rendering: lower contrast and saturation, a haze offset, a gamma
   and a brightness gain, each drawn from a range (what a reflectance 0-0.3 stretch of a hazy scene looks like);
4. **compression**: JPEG at quality 40-95.

Variants are deterministic per (seed, image name, variant index), so they can be rendered once to files and
cached like any training image (:mod:`geovec.train.feature_cache` keys features by file bytes).
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

#: the source GSD assumed for RSICD / AID crops (their 0.5-8 m, mostly near the fine end)
SOURCE_GSD_M = 1.0
#: the simulated GSD range (m) of a variant
GSD_RANGE_M = (0.5, 30.0)
#: bump when a variant's rendering changes: caches of simulated views are keyed by it
VERSION = 1


@dataclass(frozen=True)
class SensorParams:
    gsd_m: float  # simulated ground sampling distance (m)
    factor: float  # downsampling factor (>= 1)
    blur_sigma: float
    contrast: float
    saturation: float
    haze: float  # added to every channel, 0-255 scale, before the gain
    gamma: float
    gain: float
    jpeg_quality: int


def draw_params(rng: np.random.Generator, gsd_range: tuple[float, float] = GSD_RANGE_M,
                source_gsd_m: float = SOURCE_GSD_M) -> SensorParams:
    """One variant's settings (see the module docstring for the ranges)."""
    lo, hi = gsd_range
    if not 0 < lo <= hi:
        raise ValueError(f"gsd_range must be 0 < low <= high, got {gsd_range}")
    gsd = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return SensorParams(gsd_m=gsd, factor=max(1.0, gsd / source_gsd_m), blur_sigma=float(rng.uniform(0.0, 1.0)),
                        contrast=float(rng.uniform(0.6, 1.0)), saturation=float(rng.uniform(0.5, 1.0)),
                        haze=float(rng.uniform(0.0, 25.0)), gamma=float(rng.uniform(0.8, 1.25)),
                        gain=float(rng.uniform(0.85, 1.15)), jpeg_quality=int(rng.integers(40, 96)))


def apply(image: Image.Image, p: SensorParams) -> Image.Image:
    """``image`` (RGB) rendered with ``p``; same size as the input."""
    img = image.convert("RGB")
    w, h = img.size
    if p.factor > 1.0:
        small = (max(4, round(w / p.factor)), max(4, round(h / p.factor)))
        img = img.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BILINEAR)
    if p.blur_sigma > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(p.blur_sigma))
    img = ImageEnhance.Contrast(img).enhance(p.contrast)
    img = ImageEnhance.Color(img).enhance(p.saturation)
    a = np.asarray(img, dtype=np.float32)
    a = 255.0 * (np.clip((a + p.haze) * p.gain, 0, 255) / 255.0) ** p.gamma
    img = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=p.jpeg_quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def simulate(image: Image.Image, seed: int, key: str, variant: int = 0,
             gsd_range: tuple[float, float] = GSD_RANGE_M) -> tuple[Image.Image, SensorParams]:
    """A seeded variant of ``image`` (``key``: e.g. its file name) and the settings that made it."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode()), variant])
    p = draw_params(rng, gsd_range)
    return apply(image, p), p


def render_views(paths: list[str | Path], out_dir: str | Path, views: int = 1, seed: int = 0,
                 gsd_range: tuple[float, float] = GSD_RANGE_M) -> list[dict]:
    """Render ``views`` variants of every image to ``<out_dir>/<stem>-s<k>.jpg`` (quality 95 on top of the
    simulated compression; files already there are kept, so an interrupted run resumes); returns one row per
    variant: ``{"source", "image", **settings}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        path = Path(path)
        with Image.open(path) as im:
            source = im.convert("RGB")
        for k in range(views):
            target = out / f"{path.stem}-s{k}.jpg"
            img, p = simulate(source, seed, path.name, k, gsd_range)
            if not target.exists():
                tmp = target.with_suffix(".tmp.jpg")
                img.save(tmp, format="JPEG", quality=95)
                tmp.replace(target)
            rows.append({"source": str(path), "image": str(target.absolute()), **asdict(p)})
    return rows
