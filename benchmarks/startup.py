"""Start-up time: `geovec --version`, `geovec --help`, `geovec info`, a plain `geovec.load_model()` (and, with
--db, one `geovec search --text`), each a fresh process, against a baseline commit in the same run.

Cold: geovec's cache (``$GEOVEC_CACHE``: exported graphs, backend checks, load stamps) emptied before each run;
warm: after one untimed run with the same cache. Each figure is the median wall time of --reps runs; the two code
versions alternate run by run so both see the same machine load. The baseline is the commit's ``src/`` (git
archive) run by the same interpreter. Where the time goes is measured once with ``python -X importtime`` (the
current code's warm ``load_model()``: its top-level imports by package).

    python benchmarks/startup.py [--baseline 048a2a6] [--reps 5] [--db out/demo.lancedb] [--warm-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "startup.json"
LOAD = "import geovec; geovec.load_model()"


def cases(db: str | None) -> list[tuple[str, list[str], bool]]:
    """(name, python arguments, has a cold variant)."""
    out = [("geovec --version", ["-m", "geovec.cli", "--version"], False),
           ("geovec --help", ["-m", "geovec.cli", "--help"], False),
           ("geovec info", ["-m", "geovec.cli", "info"], True),
           ("load_model()", ["-c", LOAD], True),
           ("load_model() + one text", ["-c", LOAD + ".encode('a harbour')"], True)]
    if db:
        out.append(("geovec search --text", ["-m", "geovec.cli", "search", "--db", db, "--text", "a harbour",
                                             "-k", "5"], False))
    return out


def checkout(commit: str, into: Path) -> Path:
    """``src/`` of ``commit`` under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def timed(src: Path, cache: Path, args: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOVEC_")}
    env.update(PYTHONPATH=str(src), GEOVEC_CACHE=str(cache))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{args} failed ({src}): {r.stderr[-1500:]}")
    return wall


def import_breakdown(src: Path, cache: Path, cwd: Path) -> dict[str, float]:
    """Seconds of imports in one warm ``load_model()``: every top-level import summed by package (a package's lazy
    submodules, imported later, count for it), torch on its own (geovec imports it), and all of them together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOVEC_")}
    env.update(PYTHONPATH=str(src), GEOVEC_CACHE=str(cache))
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", LOAD], env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=900)
    by_package: dict[str, float] = {}
    torch_s = 0.0
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        seconds = int(cumulative) / 1e6
        if name.strip() == "torch":
            torch_s = seconds
        if not name.startswith("  "):  # top level: each import counted once
            top = name.strip().split(".")[0]
            by_package[top] = by_package.get(top, 0.0) + seconds
    out = {k: round(v, 3) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    return {**out, "torch (within the above)": round(torch_s, 3), "all imports": round(sum(by_package.values()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="048a2a6", help="commit to compare with (its src/)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--db", help="an index (e.g. from `geovec demo`) to time one `geovec search --text` on")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--warm-only", action="store_true", help="skip the cold runs (each exports and checks the graphs)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="geovec-startup-") as tmp:
        tmp = Path(tmp)
        versions = {"current": REPO / "src", "baseline": checkout(args.baseline, tmp / "baseline")}
        caches = {v: tmp / f"cache-{v}" for v in versions}
        cwd = tmp / "cwd"  # outside the source tree
        cwd.mkdir()
        load_at_start = os.getloadavg()
        results: dict[str, dict[str, dict]] = {}
        for name, py_args, has_cold in cases(args.db):
            for mode in (("cold", "warm") if has_cold and not args.warm_only else ("warm",)):
                walls: dict[str, list[float]] = {v: [] for v in versions}
                if mode == "warm":
                    for v, src in versions.items():
                        timed(src, caches[v], py_args, cwd)  # untimed: fills the cache
                for _ in range(args.reps):
                    for v, src in versions.items():
                        if mode == "cold":
                            shutil.rmtree(caches[v], ignore_errors=True)
                        walls[v].append(timed(src, caches[v], py_args, cwd))
                row = {v: {"median_s": round(statistics.median(w), 3), "runs_s": [round(x, 3) for x in w]}
                       for v, w in walls.items()}
                results.setdefault(name, {})[mode] = row
                print(f"{name:<24} {mode:<5} current {row['current']['median_s']:7.2f} s   "
                      f"baseline {row['baseline']['median_s']:7.2f} s   (median of {args.reps})", flush=True)
        breakdown = import_breakdown(versions["current"], caches["current"], cwd)
        print("warm load_model() imports (s):", ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items()))
    record = {"benchmark": "startup", "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
              "baseline_commit": args.baseline, "reps": args.reps, "statistic": "median wall seconds",
              "python": platform.python_version(), "cpus": os.cpu_count(),
              "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(), "results": results,
              "warm_load_model_top_level_imports_s": breakdown}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
