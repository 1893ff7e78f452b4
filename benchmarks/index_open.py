"""Opening an index and running one vector search in a fresh process: the LanceDB store (``ChipStore``, what the
read-only commands used before) against the read-only store on the Lance dataset alone (``ReadOnlyChipStore``),
and `geovec search --like` (a stored vector: no model) at this code against a baseline commit.

Each figure is the median wall time of --reps fresh processes; the variants alternate run by run so they see
the same machine load. Inside each process the script also times its phases (imports, open, one search). The
indices are synthetic (random unit vectors of --dim, square footprints; ``chip_rows`` writes them as a build
does): --rows 1849 is the chip count of a Sentinel-2 tile at 256 px (below the ANN threshold: exact search);
20000 gets an IVF_HNSW_SQ index. --db times an existing index instead.

    python benchmarks/index_open.py [--rows 1849 20000] [--dim 768] [--reps 5] [--baseline fafa8f1] [--db DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from startup import checkout  # noqa: E402  (the baseline commit's src/, as the start-up benchmark takes it)

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "index_open.json"

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from geovec.index.search import SearchQuery, search_vector
from geovec.index import store as store_mod
t1 = time.perf_counter()
import {backend}
t2 = time.perf_counter()
store = store_mod.{cls}({db!r})
t3 = time.perf_counter()
vec = np.random.default_rng(1).standard_normal(store.info.dimension).astype(np.float32)
hits = search_vector(store, vec, SearchQuery(text="x", k=10))
t4 = time.perf_counter()
print(json.dumps({{"geovec_imports_s": t1 - t0, "backend_import_s": t2 - t1, "open_s": t3 - t2,
                  "search_s": t4 - t3, "ids": [h.id for h in hits]}}))
"""
FLOOR = "python -c 'import numpy, pyarrow' (floor)"  # what any command that embeds a query pays anyway
VARIANTS = {"lancedb (ChipStore)": ("lancedb", "ChipStore"), "lance (ReadOnlyChipStore)": ("lance", "ReadOnlyChipStore")}


def make_index(db: Path, rows: int, dim: int) -> None:
    import numpy as np

    from geovec.index.chips import Chip
    from geovec.index.store import ChipStore, IndexInfo, chip_rows

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lon, lat, d = rng.uniform(-179, 179, rows), rng.uniform(-60, 60, rows), 0.01
    chips = [Chip(f"scene{i // 1000}.tif", ((i % 1000) * 256, 0, 256, 256), None,
                  ((x - d, y - d), (x + d, y - d), (x + d, y + d), (x - d, y + d), (x - d, y - d)), y, x, None, "sig")
             for i, (x, y) in enumerate(zip(lon, lat))]
    store = ChipStore.create(db, IndexInfo(model_id="synthetic", revision="0", dimension=dim))
    store.add(chip_rows(chips, vectors, "synthetic"))
    store.ensure_indices()


def run(args: list[str], src: Path, cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{args[:3]} failed ({src}): {r.stderr[-1500:]}")
    return wall, r.stdout


def time_index(db: Path, reps: int, baseline_src: Path, cwd: Path) -> dict:
    from geovec.index.store import ReadOnlyChipStore

    src = REPO / "src"
    store = ReadOnlyChipStore(db)
    chip_id = store.column("id")["id"][0].as_py()
    cli = ["-m", "geovec.cli", "search", "--db", str(db), "--like", chip_id, "-k", "10", "--format", "json"]
    runs: dict[str, list[float]] = {}
    phases: dict[str, list[dict]] = {}
    answers: dict[str, list[str]] = {}
    for _ in range(reps):
        for name, (backend, cls) in VARIANTS.items():
            wall, out = run(["-c", CHILD.format(backend=backend, cls=cls, db=str(db))], src, cwd)
            doc = json.loads(out.strip().splitlines()[-1])
            answers[name] = doc.pop("ids")
            runs.setdefault(name, []).append(wall)
            phases.setdefault(name, []).append(doc)
        for name, version in (("geovec search --like, this code", src), ("geovec search --like, baseline", baseline_src)):
            runs.setdefault(name, []).append(run(cli, version, cwd)[0])
        runs.setdefault(FLOOR, []).append(run(["-c", "import numpy, pyarrow"], src, cwd)[0])
    if len({tuple(v) for v in answers.values()}) != 1:
        raise SystemExit(f"the two stores found different chips: {answers}")
    out = {"rows": len(store), "dimension": store.info.dimension, "ann_index": store.has_vector_index(), "variants": {}}
    for name, walls in runs.items():
        row = {"median_s": round(statistics.median(walls), 3), "runs_s": [round(w, 3) for w in walls]}
        if name in phases:
            row["median_phases_s"] = {k: round(statistics.median(p[k] for p in phases[name]), 3)
                                      for k in phases[name][0]}
        out["variants"][name] = row
        extra = "  ".join(f"{k} {v:.3f}" for k, v in row.get("median_phases_s", {}).items())
        print(f"  {name:<34} {row['median_s']:6.2f} s   {extra}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1849, 20000])
    ap.add_argument("--dim", type=int, default=768, help="vector dimension (geovec-compact: 768)")
    ap.add_argument("--db", type=Path, help="time this existing index instead of synthetic ones")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--baseline", default="fafa8f1", help="commit whose `geovec search --like` to compare with")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    load_at_start = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="geovec-index-open-") as tmp:
        tmp = Path(tmp)
        baseline_src = checkout(args.baseline, tmp / "baseline")
        cwd = tmp / "cwd"  # outside the source tree
        cwd.mkdir()
        dbs = {str(args.db): args.db} if args.db else {}
        for n in ([] if args.db else args.rows):
            dbs[f"synthetic {n} x {args.dim}"] = tmp / f"db{n}"
            make_index(dbs[f"synthetic {n} x {args.dim}"], n, args.dim)
        for label, db in dbs.items():
            print(label, flush=True)
            results[label] = time_index(db, args.reps, baseline_src, cwd)
    record = {"benchmark": "index_open", "command": "python benchmarks/index_open.py " + " ".join(sys.argv[1:]),
              "baseline_commit": args.baseline, "reps": args.reps, "statistic": "median wall seconds of fresh processes",
              "python": platform.python_version(), "cpus": os.cpu_count(), "load_average_at_start": load_at_start,
              "load_average_at_end": os.getloadavg(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
