"""Georeferenced places for the geo tasks and for training: chips of GeoTIFF scenes with their own centre, and a
spatially held-out split.

Sources (folders under the data root, each optional):

* ``rsvqa_lr/Images_LR/*.tif``: Sentinel-2 RGB scenes (256 px, ~10 m, the Netherlands), 4 x 4 chips of 64 px;
* ``rsvqa_hr/Data/*.tif``: USGS orthophotos (512 px, 0.2 m, Long Island), 4 x 4 chips of 128 px;
* ``eurosat_ms/<Class>/*.tif``: EuroSAT-MS Sentinel-2 L1C patches across Europe (64 px, 13 bands), one chip each;
* ``satclip_s2/**/patch_*.tif``: SatCLIP's Sentinel-2 L2A patches worldwide (256 px, 12 bands), 2 x 2 chips.

Multispectral Sentinel-2 files are rendered in true colour (B04, B03, B02) with one fixed reflectance stretch
(0-3000 of 10,000 -> 0-255) for every chip, so the same surface looks the same in every chip. Each chip's
centre comes from its own pixel window through the file's georeference.

**Spatial split** (:func:`spatial_split`): the Earth is cut into blocks of ``block_km`` (default 10 km); a seeded
third of the blocks is held out for evaluation; a training scene whose footprint comes within ``gap_km`` of an
evaluation scene's footprint is dropped, so no held-out tile has a training tile beside it. Splits are by
*scene*: all chips of a scene share its split.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from geovec.data.base import prompt_name
from geovec.domain import haversine_km
from geovec.inputs.bands import TRUE_COLOUR_MAX_DN
from geovec.inputs.scaling import scale_to_uint8


@dataclass(frozen=True)
class GeoSource:
    """One folder of georeferenced scenes and how to chip and describe them."""

    dataset: str
    pattern: str  # glob under <data_root>/<dataset>
    grid: int  # grid x grid chips per scene
    text: str  # description of the imagery; "{class}" is the scene's class (parent folder) when given
    true_colour: tuple[int, int, int] | None = None  # 1-based band indexes of R, G, B for multispectral files


SOURCES = (
    GeoSource("rsvqa_lr", "Images_LR/*.tif", 4, "a Sentinel-2 satellite image at 10 m resolution"),
    GeoSource("rsvqa_hr", "Data/*.tif", 4, "a high-resolution aerial orthophoto"),
    GeoSource("eurosat_ms", "*/*.tif", 1, "a Sentinel-2 satellite image of {class}", true_colour=(4, 3, 2)),
    GeoSource("satclip_s2", "**/patch_*.tif", 2, "a Sentinel-2 satellite image", true_colour=(4, 3, 2)),
)
# Sentinel-2 digital numbers (reflectance x 10,000) mapped to 255: the one true-colour scale, shared with
# geovec.inputs.bands (which reads Sentinel-2 GeoTIFFs for `geovec embed` / `index build` with it)
REFLECTANCE_MAX = TRUE_COLOUR_MAX_DN


@dataclass
class Scene:
    path: Path
    dataset: str
    scene: str  # "<dataset>/<relative path>"
    lat: float
    lon: float
    radius_km: float  # half the footprint diagonal
    text: str
    source: GeoSource


def _scene_text(src: GeoSource, path: Path) -> str:
    return src.text.format(**{"class": prompt_name(path.parent.name)}) if "{class}" in src.text else src.text


def find_scenes(data_root: str | Path, sources: Sequence[GeoSource] = SOURCES) -> list[Scene]:
    """Every georeferenced scene of ``sources`` under ``data_root`` (missing folders are skipped)."""
    import rasterio

    from geovec.inputs.georef import georef_from

    root = Path(data_root)
    out = []
    for src in sources:
        folder = root / src.dataset
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(src.pattern)):
            with rasterio.open(path) as ds:
                g = georef_from(ds.crs, ds.transform, ds.width, ds.height)
            if g is None:
                continue
            lons, lats = zip(*g.footprint[:4])
            diag = float(haversine_km(lats[0], lons[0], lats[2], lons[2]))
            out.append(Scene(path, src.dataset, f"{src.dataset}/{path.relative_to(folder).as_posix()}", g.centre_lat,
                             g.centre_lon, diag / 2, _scene_text(src, path), src))
    return out


def block_of(lat: float, lon: float, block_km: float) -> tuple[int, int]:
    """Grid block of a point: rows of ``block_km`` in latitude, columns of ``block_km`` along the parallel of the
    row's centre (so blocks stay about square away from the equator)."""
    dlat = block_km / 111.195
    row = math.floor((lat + 90.0) / dlat)
    centre = -90.0 + (row + 0.5) * dlat
    dlon = block_km / max(111.195 * math.cos(math.radians(centre)), 1e-6)
    return row, math.floor((lon + 180.0) / dlon)


def spatial_split(scenes: Sequence[Scene], block_km: float = 10.0, gap_km: float = 2.0, eval_fraction: float = 1 / 3,
                  seed: int = 0) -> dict[str, str]:
    """scene id -> ``"eval"``, ``"train"`` or ``"buffer"`` (a training scene too close to an evaluation one).

    Blocks are ranked by a seeded hash and the first ``eval_fraction`` of them (at least one) are held out."""
    blocks = {s.scene: block_of(s.lat, s.lon, block_km) for s in scenes}
    distinct = sorted(set(blocks.values()))
    ranked = sorted(distinct, key=lambda b: hashlib.sha1(f"{seed}:{b[0]}:{b[1]}".encode()).hexdigest())
    held = set(ranked[: max(1, round(eval_fraction * len(ranked)))]) if distinct else set()
    split = {s.scene: "eval" if blocks[s.scene] in held else "train" for s in scenes}
    ev = [s for s in scenes if split[s.scene] == "eval"]
    if ev:
        elat = np.array([s.lat for s in ev])
        elon = np.array([s.lon for s in ev])
        erad = np.array([s.radius_km for s in ev])
        for s in scenes:
            if split[s.scene] == "train":
                d = haversine_km(s.lat, s.lon, elat, elon) - erad - s.radius_km
                if np.any(d < gap_km):
                    split[s.scene] = "buffer"
    return split


def source_rgb(ds, src: GeoSource) -> np.ndarray:
    """(H, W, 3) uint8 of an open raster of ``src``: true colour at the fixed Sentinel-2 scale where the source
    names its bands, else its first three bands (one grey band repeated)."""
    if src.true_colour is not None and ds.count >= max(src.true_colour):
        a = ds.read(list(src.true_colour)).astype(np.float32)
        return scale_to_uint8(a, 0.0, REFLECTANCE_MAX).transpose(1, 2, 0)
    a = ds.read(list(range(1, min(3, ds.count) + 1)))
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    if a.dtype != np.uint8:
        from geovec.inputs.scaling import to_uint8

        return to_uint8(a.transpose(1, 2, 0))
    return a.transpose(1, 2, 0)


def chip_scene(scene: Scene, out_dir: Path) -> list[dict[str, Any]]:
    """``grid x grid`` chips of a scene as PNG files, each with its own centre (lat, lon)."""
    import rasterio
    from PIL import Image
    from rasterio.warp import transform as warp_transform

    with rasterio.open(scene.path) as ds:
        rgb = source_rgb(ds, scene.source)
        h, w = rgb.shape[:2]
        g = scene.source.grid
        cw, ch = w // g, h // g
        xs, ys, boxes = [], [], []
        for r in range(g):
            for c in range(g):
                x0, y0 = c * cw, r * ch
                x, y = ds.transform @ (x0 + cw / 2.0, y0 + ch / 2.0)
                xs.append(x)
                ys.append(y)
                boxes.append((x0, y0, r, c))
        lons, lats = warp_transform(ds.crs, "EPSG:4326", xs, ys)
    out = []
    safe = scene.scene.replace("/", "__")
    for (x0, y0, r, c), lat, lon in zip(boxes, lats, lons):
        p = out_dir / f"{Path(safe).stem}_r{r}c{c}.png"
        if not p.exists():
            tmp = p.with_suffix(".tmp.png")
            Image.fromarray(np.ascontiguousarray(rgb[y0 : y0 + ch, x0 : x0 + cw])).save(tmp)
            tmp.replace(p)
        out.append({"image": p, "lat": float(lat), "lon": float(lon), "dataset": scene.dataset, "scene": scene.scene,
                    "scene_lat": scene.lat, "scene_lon": scene.lon, "text": scene.text, "chip": f"r{r}c{c}"})
    return out


def _fingerprint(scenes: Iterable[Scene], **settings) -> str:
    h = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for s in scenes:
        st = s.path.stat()
        h.update(f"{s.scene}:{st.st_size}:{s.source.grid}:{s.source.true_colour}:{REFLECTANCE_MAX}".encode())
    return h.hexdigest()[:12]


def geo_places(data_root: str | Path, split: str = "eval", cache_dir: str | Path | None = None,
               block_km: float = 10.0, gap_km: float = 2.0, seed: int = 0,
               sources: Sequence[GeoSource] = SOURCES) -> list[dict[str, Any]]:
    """Chips of the scenes in ``split`` (``"eval"``, ``"train"`` or ``"all"``; buffer scenes are in neither
    split), rendered once to PNG under ``<cache_dir>/tasks/geo-chips-<fingerprint>/``.

    Each place: ``image`` (PNG path), ``lat``/``lon`` (chip centre, WGS84 degrees), ``dataset``, ``scene`` (id
    shared by the chips of one scene), ``scene_lat``/``scene_lon``, ``text`` (what the imagery is), ``split``."""
    if split not in ("eval", "train", "all"):
        raise ValueError(f"split must be 'eval', 'train' or 'all', not {split!r}")
    from geovec.paths import cache_dir as default_cache_dir

    scenes = find_scenes(data_root, sources)
    which = spatial_split(scenes, block_km=block_km, gap_km=gap_km, seed=seed)
    folder = Path(cache_dir or default_cache_dir()) / "tasks" / f"geo-chips-{_fingerprint(scenes)}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in scenes:
        if split != "all" and which[s.scene] != split:
            continue
        for chip in chip_scene(s, folder):
            out.append({**chip, "split": which[s.scene]})
    return out
