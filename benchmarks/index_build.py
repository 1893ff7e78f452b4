"""Index build throughput (chips/s) of `geovec index build` with the real default model, on this CPU.

Data: the RSVQA-HR GeoTIFFs of shared/data (25 scenes, 512x512, EPSG:3857, JPEG-in-TIFF) cut into 256 px
chips (100 chips), or, with --synthetic, a generated 1536x1536 UTM GeoTIFF (36 chips). Baseline in the
same process: `model.encode_document` on the same chips' pixels already in memory (pure model time), so
the ratio shows what chipping, reading, reprojection and LanceDB writes cost on top.

    python benchmarks/index_build.py [--data-root ../shared/data] [--synthetic]
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make torch ~15x slower on this oversubscribed 2-core machine when
# called from the main thread (measured: 1.0 vs 24 text encodes/s); passive waiting removes the effect.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "index_build.json"


def data_root(arg: str | None) -> Path | None:
    root = Path(arg or os.environ.get("GEOVEC_DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "data")
    return root if (root / "rsvqa_hr" / "Data").exists() else None


def synthetic_scene(folder: Path) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scene.tif"
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, (3, 1536, 1536), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=1536, height=1536, count=3, dtype="uint8",
                       crs="EPSG:32631", transform=from_origin(600_000, 5_800_000, 1.0, 1.0), tiled=True) as ds:
        ds.write(data)
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--chip-size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import geovec
    from geovec.index.build import build_index, index_info
    from geovec.index.chips import ChipSpec, discover_files, iter_plans, read_chip

    work = Path(tempfile.mkdtemp(prefix="geovec-bench-index-"))
    root = None if args.synthetic else data_root(args.data_root)
    if root is not None:
        inputs, data = root / "rsvqa_hr" / "Data", "shared/data rsvqa_hr/Data (25 GeoTIFFs 512x512, EPSG:3857)"
    else:
        inputs, data = synthetic_scene(work / "scenes"), "synthetic 1536x1536 GeoTIFF, EPSG:32631"
    model = geovec.load_model()
    torch_threads = __import__("torch").get_num_threads()
    spec = ChipSpec(args.chip_size)
    files, _ = discover_files([inputs])
    chips = [c for _, cs, _ in iter_plans(files, spec) if cs for c in cs]
    info = index_info(model, spec)
    # warm-up (first forward allocates)
    model.encode_document([{"image": read_chip(chips[0]).pixels}], task="retrieval")

    pixels = [read_chip(c).pixels for c in chips]
    t = time.perf_counter()
    model.encode_document([{"image": p} for p in pixels], task="retrieval", batch_size=args.batch_size)
    t_model = time.perf_counter() - t

    t = time.perf_counter()
    s = build_index([inputs], work / "db", model, spec, batch_size=args.batch_size, progress=False)
    t_build = time.perf_counter() - t
    assert s.chips_embedded == len(chips) and not s.failed, s
    res = {"benchmark": "index_build", "data": data, "chips": len(chips), "chip_size": args.chip_size,
           "model": f"{model.model_id}@{model.revision}", "batch_size": args.batch_size,
           "cpu": platform.processor() or platform.machine(), "torch_threads": torch_threads,
           "cores_note": "2 CPU cores shared with other jobs", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "index_build": {"seconds": round(t_build, 2), "chips_per_s": round(len(chips) / t_build, 2)},
           "baseline_model_encode_only": {"seconds": round(t_model, 2), "chips_per_s": round(len(chips) / t_model, 2)},
           "overhead_vs_model_only": round(t_build / t_model - 1, 3), "instruction": info.instruction}
    print(json.dumps(res, indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
