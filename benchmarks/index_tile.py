"""Indexing a whole Sentinel-2-sized tile: chips/s, peak RSS and CPU use of `geovec index build`, this checkout
against a baseline (the code of an earlier commit) in the same run, plus the wall time of `geovec search`.

The tile is generated once in /tmp (never in the repository): 10980 x 10980 px, 3 x uint16, UTM 31N, 10 m,
512-px tiles, DEFLATE; Sentinel-2-like values (smooth fields plus noise, DN 200-3500). Each build runs in its own
process, started by a small wrapper that reports its child's peak RSS (ru_maxrss) and CPU seconds, so the
figures are those of the `geovec` process alone. "Cores busy" = CPU seconds / wall seconds.

Stages (in this process, on the first --stage-chips chips, default model): planning, reading + decoding the
windows (1 and 2 threads), the model's encode, and LanceDB writes, so the report says where the time goes.

    nice -n 10 python benchmarks/index_tile.py [--baseline-ref 048a2a6] [--size 10980] [--runs baseline,new,new-resize224]
"""

from __future__ import annotations

import os

# see benchmarks/index_build.py: OpenMP threads that spin while waiting slow torch down on a busy 2-core machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "index_tile.json"
WORK = Path(tempfile.gettempdir()) / "geovec-index-tile"

# runs a command and prints its peak RSS (KiB) and CPU seconds as JSON on the last line of stderr
MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
sys.stderr.write("\\n" + json.dumps({"rc": p.returncode, "wall_s": wall, "maxrss_kib": ru.ru_maxrss,
                                    "cpu_s": ru.ru_utime + ru.ru_stime}) + "\\n")
"""


def make_tile(path: Path, size: int, block: int = 512) -> Path:
    """A Sentinel-2-sized GeoTIFF written block row by block row (never the whole raster in memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.tif")
    rng = np.random.default_rng(0)
    coarse = rng.random((3, size // 256 + 2, size // 256 + 2)).astype(np.float32)  # smooth fields: land cover
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint16", crs="EPSG:32631",
                   transform=from_origin(600_000, 5_800_000, 10.0, 10.0), tiled=True, blockxsize=block,
                   blockysize=block, compress="deflate", BIGTIFF="IF_SAFER")
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.update_tags(SPACECRAFT_NAME="Sentinel-2A", PRODUCT_TYPE="S2MSI2A")
        for r0 in range(0, size, block):
            h = min(block, size - r0)
            rows = (np.arange(r0, r0 + h) / 256.0)[:, None]
            cols = (np.arange(size) / 256.0)[None, :]
            i, j = rows.astype(int), cols.astype(int)
            fy, fx = rows - i, cols - j
            data = np.empty((3, h, size), np.uint16)
            for b in range(3):
                c = coarse[b]
                field = (c[i, j] * (1 - fy) * (1 - fx) + c[i + 1, j] * fy * (1 - fx) + c[i, j + 1] * (1 - fy) * fx
                         + c[i + 1, j + 1] * fy * fx)
                noise = rng.normal(0, 0.04, (h, size)).astype(np.float32)
                data[b] = np.clip(200 + 3300 * (field + noise), 1, 10000).astype(np.uint16)
            ds.write(data, window=Window(0, r0, size, h))
    tmp.replace(path)
    return path


def baseline_tree(ref: str) -> Path:
    """``src/`` of commit ``ref`` (git archive), to run the baseline code in the same benchmark."""
    dest = WORK / f"src-{ref}"
    if not (dest / "src" / "geovec").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def measured(cmd: list[str], pythonpath: Path) -> tuple[dict, str, str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    p = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True)
    stats = json.loads(p.stderr.strip().splitlines()[-1])
    return stats, p.stdout, p.stderr


def build_run(name: str, tile: Path, src: Path, extra: list[str]) -> dict:
    db = WORK / f"db-{name}"
    shutil.rmtree(db, ignore_errors=True)
    cmd = [sys.executable, "-m", "geovec.cli", "index", "build", str(tile), "--db", str(db), "--format", "json",
           *extra]
    stats, out, err = measured(cmd, src)
    if stats["rc"] != 0:
        raise SystemExit(f"{name}: geovec index build failed (exit {stats['rc']}):\n{err[-2000:]}")
    summary = json.loads(out[out.index("{"):])
    progress = [ln for ln in err.splitlines() if ln.startswith("index: ")]
    return {"run": name, "args": extra, "code": str(src), "chips": summary["chips_embedded"],
            "build_s": round(stats["wall_s"], 1), "chips_per_s_wall": round(summary["chips_embedded"] / stats["wall_s"], 1),
            "chips_per_s_summary": round(summary["chips_per_s"], 1), "peak_rss_mib": round(stats["maxrss_kib"] / 1024),
            "cpu_s": round(stats["cpu_s"], 1), "cores_busy": round(stats["cpu_s"] / stats["wall_s"], 2),
            "progress_lines": len(progress), "db": str(db)}


def search_runs(db: str, src: Path, n: int = 3) -> list[float]:
    walls = []
    for _ in range(n):
        stats, _, err = measured([sys.executable, "-m", "geovec.cli", "search", "--db", db, "--text",
                                  "a river through farmland", "-k", "5"], src)
        if stats["rc"] != 0:
            raise SystemExit(f"geovec search failed: {err[-1000:]}")
        walls.append(round(stats["wall_s"], 2))
    return walls


def stages(tile: Path, n_chips: int) -> dict:
    """Seconds per stage for the first ``n_chips`` chips of the tile, in this process (current code)."""
    sys.path.insert(0, str(ROOT / "src"))
    import geovec
    from geovec.index.chips import ChipSpec, plan_chips
    from geovec.index.embedding import encode_chips, index_info, read_chips
    from geovec.index.store import ChipStore, chip_rows

    t = time.perf_counter()
    chips = plan_chips(tile, ChipSpec(256))
    plan_s = time.perf_counter() - t
    todo = chips[:n_chips]
    t = time.perf_counter()
    model = geovec.load_model()
    load_s = time.perf_counter() - t
    info = index_info(model, ChipSpec(256))
    out = {"chips": len(todo), "plan_all_chips_s": round(plan_s, 2), "model_load_s": round(load_s, 2)}
    for threads in (1, 2):
        t = time.perf_counter()
        read = read_chips(todo, None, read_threads=threads)
        out[f"read_{threads}_thread_chips_per_s"] = round(len(todo) / (time.perf_counter() - t), 1)
    for resize in (None, 224):
        r = read_chips(todo, resize, read_threads=2) if resize else read
        encode_chips(model, type(r)(r.ok[:32], r.pixels[:32], r.nodata[:32]), info)  # warm-up
        for batch in (8, 32):
            t = time.perf_counter()
            vectors = encode_chips(model, r, info, batch_size=batch)
            out[f"encode_{resize or 256}px_batch{batch}_chips_per_s"] = round(len(todo) / (time.perf_counter() - t), 1)
    db = WORK / "db-stages"
    shutil.rmtree(db, ignore_errors=True)
    store = ChipStore.create(db, info)
    t = time.perf_counter()
    store.add(chip_rows(read.ok, vectors, info.model_id, read.nodata))
    out["lancedb_add_chips_per_s"] = round(len(todo) / (time.perf_counter() - t), 1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=10980, help="tile width = height in pixels")
    ap.add_argument("--baseline-ref", default="048a2a6", help="commit whose code is the baseline")
    ap.add_argument("--runs", default="baseline,new,new-resize224,new-batch32")
    ap.add_argument("--stage-chips", type=int, default=256)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    t = time.perf_counter()
    tile = make_tile(WORK / f"s2_like_{args.size}.tif", args.size)
    made_s = time.perf_counter() - t
    here = ROOT / "src"
    runs = {"baseline": (baseline_tree(args.baseline_ref), []), "new": (here, []),
            "new-resize224": (here, ["--resize", "224"]), "new-batch32": (here, ["--batch-size", "32"])}
    results = []
    for name in args.runs.split(","):
        src, extra = runs[name]
        r = build_run(name, tile, src, extra)
        print(json.dumps(r), flush=True)
        results.append(r)
    new = next((r for r in results if r["run"] == "new"), results[-1])
    search = {"new_code_s": search_runs(new["db"], here)}
    if "baseline" in runs and any(r["run"] == "baseline" for r in results):
        search["baseline_code_s"] = search_runs(new["db"], runs["baseline"][0])
    print(json.dumps({"search_wall_s": search}), flush=True)
    stage = stages(tile, args.stage_chips) if args.stage_chips else None
    print(json.dumps({"stages": stage}), flush=True)
    doc = {"what": "geovec index build of one Sentinel-2-sized tile; geovec search wall time",
           "tile": {"path": str(tile), "size_px": args.size, "bands": 3, "dtype": "uint16", "crs": "EPSG:32631",
                    "tiled": 512, "compress": "deflate", "bytes": tile.stat().st_size, "generated_s": round(made_s, 1)},
           "baseline_ref": args.baseline_ref, "runs": results, "search_wall_s": search, "stages": stage,
           "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "python": platform.python_version(),
                       "platform": platform.platform()},
           "command": "nice -n 10 python benchmarks/index_tile.py " + " ".join(sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
