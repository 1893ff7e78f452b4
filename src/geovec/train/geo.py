"""Geo pairs from georeferenced imagery: image <-> location, and (text + location) -> (image + location).

Crops (windows) of each GeoTIFF carry their own centre lat/lon (WGS84 degrees, from the window's georef), so
one scene gives many pairs at distinct places. Build training pairs from training scenes only.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from geovec.inputs.raster import read_image
from geovec.train.data import Example

SOURCE_TEXT = {
    "rsvqa_lr": "Sentinel-2 satellite image, about 10 m per pixel",
    "rsvqa_hr": "aerial orthophoto, about 0.2 m per pixel",
}


def read_geo_index(data_root: str | Path) -> list[dict]:
    """``geo_index.csv`` rows with absolute ``path`` and float ``center_lat`` / ``center_lon``."""
    root = Path(data_root)
    with open(root / "geo_index.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = str(root / r["dataset"] / r["relpath"])
        r["center_lat"], r["center_lon"] = float(r["center_lat"]), float(r["center_lon"])
        r["width"], r["height"] = int(r["width"]), int(r["height"])
        r["id"] = int(Path(r["relpath"]).stem)
    return rows


def is_train_scene(row: dict) -> bool:
    """RSVQA ids divisible by 5 are kept for evaluation."""
    return row["id"] % 5 != 0


def pixel_to_latlon(path: str, col: float, row: float) -> tuple[float, float]:
    """WGS84 (lat, lon) in degrees of a pixel position (col, row; fractional, from the top-left corner).

    (Windowed ``read_tiff`` cannot rebuild the georef of JPEG-in-TIFF YCbCr files, so crops are cut from
    the full image and located here.)"""
    import rasterio
    from pyproj import Transformer

    with rasterio.open(path) as ds:
        x, y = ds.transform @ (col, row)
        crs = ds.crs
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lat), float(lon)


def geo_crops(rows: Sequence[dict], out_dir: str | Path, per_scene: int, seed: int = 0,
              scale: tuple[float, float] = (0.4, 0.8)) -> list[dict]:
    """Random square windows per scene written as PNG, with their centre lat/lon; plus the whole scene."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for r in rows:
        out.append({"image": r["path"], "lat": r["center_lat"], "lon": r["center_lon"], "dataset": r["dataset"]})
        for k in range(per_scene):
            s = int(min(r["width"], r["height"]) * rng.uniform(*scale))
            col, row = int(rng.integers(0, r["width"] - s + 1)), int(rng.integers(0, r["height"] - s + 1))
            pixels = read_image(r["path"]).pixels[row : row + s, col : col + s]
            lat, lon = pixel_to_latlon(r["path"], col + s / 2, row + s / 2)
            p = out_dir / f"{r['dataset']}_{r['id']}_{k}.png"
            Image.fromarray(pixels).save(p)
            out.append({"image": str(p), "lat": lat, "lon": lon, "dataset": r["dataset"]})
    return out


def geo_examples(places: Sequence[dict]) -> Iterator[Example]:
    """image -> location, and (text + location) -> (image + location), per place."""
    for p in places:
        loc = {"lat": p["lat"], "lon": p["lon"]}
        text = SOURCE_TEXT.get(p.get("dataset", ""), "remote sensing image")
        yield Example("geo", {"image": p["image"]}, [dict(loc)], group=p["image"])
        yield Example("geo", {"text": text, **loc}, [{"image": p["image"], **loc}], group=p["image"])
