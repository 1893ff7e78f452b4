"""Map tile latency of the indexed imagery at every zoom, on a Sentinel-2-sized GeoTIFF (10980 x 10980 px,
3 x uint16, UTM 31N, 512-px tiles, DEFLATE, no overviews), for the two ways geovec.serve.tiles can render:

* baseline (same process): rio-tiler over the source raster only (``Tiler(previews=False)``);
* geovec: rio-tiler over an 8-bit preview written once (longer side <= 2048 px, internal overviews) for tiles
  coarser than the preview's pixels, the source for finer ones. The one-off preview write is timed too.

The index holds the raster's chips (256 px) with random vectors: tiles need no model.

    python benchmarks/map_tiles.py [--raster /tmp/s2_big.tif] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "map_tiles.json"


def make_raster(path: Path, n: int = 10980) -> Path:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    prof = dict(driver="GTiff", width=n, height=n, count=3, dtype="uint16", crs="EPSG:32631",
                transform=from_origin(600000, 5800020, 10, 10), tiled=True, blockxsize=512, blockysize=512,
                compress="deflate")
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **prof) as ds:
        for r in range(0, n, 512):
            h = min(512, n - r)
            yy, xx = np.arange(r, r + h)[:, None] / n, np.arange(n)[None, :] / n
            base = (np.sin(xx * 40) * np.cos(yy * 33) + 1) * 1500 + 300
            for b in range(3):
                noise = rng.integers(0, 400, size=(h, n))
                ds.write((base * (0.8 + 0.2 * b) + noise).astype(np.uint16), b + 1, window=Window(0, r, n, h))
    return path


def index_of(raster: Path, db: Path):
    from geovec.index.chips import ChipSpec, plan_chips
    from geovec.index.store import ChipStore, IndexInfo, chip_rows

    chips = plan_chips(raster, ChipSpec(256))
    store = ChipStore.create(db, IndexInfo(model_id="synthetic", revision="0", dimension=8))
    vectors = np.random.default_rng(0).standard_normal((len(chips), 8)).astype(np.float32)
    store.add(chip_rows(chips, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "synthetic"))
    return store, len(chips)


def centre_tiles(raster: Path, zooms):
    import morecantile
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(raster) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    tms = morecantile.tms.get("WebMercatorQuad")
    return {z: tms.tile((w + e) / 2, (s + n) / 2, z) for z in zooms}


def time_tiles(tilers: dict, tiles, repeats: int) -> dict:
    """Median / max ms per zoom for each tiler, the tilers interleaved tile by tile (same machine load)."""
    out = {name: {} for name in tilers}
    for z, t in tiles.items():
        ts = {name: [] for name in tilers}
        size = {}
        for _ in range(repeats):
            for name, tiler in tilers.items():
                t0 = time.perf_counter()
                png = tiler.tile(t.z, t.x, t.y)
                ts[name].append((time.perf_counter() - t0) * 1000)
                size[name] = len(png)
        for name in tilers:
            out[name][str(z)] = {"tile": [t.z, t.x, t.y], "median_ms": round(statistics.median(ts[name]), 1),
                                 "max_ms": round(max(ts[name]), 1), "png_bytes": size[name]}
        print(f"  z{z:>2} {t.x}/{t.y}: " + "  ".join(f"{n} {out[n][str(z)]['median_ms']:8.1f} ms" for n in tilers),
              flush=True)
    return out


def main():
    from geovec.serve.tiles import Tiler

    ap = argparse.ArgumentParser()
    ap.add_argument("--raster", type=Path, default=Path("/tmp/s2_big.tif"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--zooms", type=int, nargs="+", default=[6, 7, 8, 9, 10, 11, 12, 13, 14])
    args = ap.parse_args()
    if not args.raster.exists():
        print(f"writing {args.raster} ...", flush=True)
        make_raster(args.raster)
    with tempfile.TemporaryDirectory() as tmp:
        store, chips = index_of(args.raster, Path(tmp) / "db")
        tiles = centre_tiles(args.raster, args.zooms)
        tiler = Tiler(store, Path(tmp) / "previews")
        t0 = time.perf_counter()
        tiler.warm()
        preview_s = time.perf_counter() - t0
        preview_bytes = sum(p.stat().st_size for p in (Path(tmp) / "previews").glob("*.tif"))
        print(f"{chips} chips; preview written in {preview_s:.1f} s ({preview_bytes / 1e6:.1f} MB)", flush=True)
        got = time_tiles({"baseline": Tiler(store, Path(tmp) / "none", previews=False), "geovec": tiler}, tiles,
                         args.repeats)
        baseline, geovec = got["baseline"], got["geovec"]
    result = {"raster": "10980x10980 3 x uint16 UTM 31N, 512 px tiles, DEFLATE, no overviews", "chips": chips,
              "repeats": args.repeats, "preview_write_s": round(preview_s, 2), "preview_bytes": preview_bytes,
              "baseline_source_only": baseline, "geovec_preview_and_source": geovec,
              "machine": f"{platform.machine()} {platform.processor() or ''} (2 shared cores)".strip()}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
