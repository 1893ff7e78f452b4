"""Wall time of the rsmeb-dev suite per task, and the share of it spent outside model forward passes.

    PYTHONPATH=src python benchmarks/bench_dev.py [--model geovec-compact] [--data-root ../shared/data]

Runs the whole suite cold (fresh embedding cache in a temp dir, every task recomputed), then warm (same
cache: a rerun must cost next to nothing), plus a same-process baseline: plain ``model.encode`` on 64 RSICD
val images, to compare the harness's image throughput with the model's own. Writes
``benchmarks/results/rsmeb_dev_<model>.json`` and prints a table. Targets: whole cold run < 15 min on the
2-core dev machine; time outside forward passes < 10 % of the cold run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from geovec.bench.encoders import load_encoder
from geovec.bench.runner import RunConfig, run_benchmark, slug
from geovec.bench.tasks import tasks_in
from geovec.paths import default_data_root


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_s() -> float:
    """CPU seconds (user + system, all threads) used by this process so far: unlike wall time it barely
    depends on how many other jobs share the machine."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="geovec-compact")
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the run's cache and per-task results here (default: a temp dir, deleted)")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    args = ap.parse_args()

    specs = tasks_in("rsmeb-dev")
    t_load = time.perf_counter()
    enc = load_encoder(args.model, batch_size=args.batch_size)
    load_s = time.perf_counter() - t_load
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="geovec-bench-") as tmp:
        work = args.keep or Path(tmp)
        if (work / "cache").exists():
            raise SystemExit(f"{work / 'cache'} exists: the cold run needs an empty cache")
        cfg = RunConfig(data_root=args.data_root, out_dir=work / "out", cache_dir=work / "cache",
                        overwrite=True, progress=False)
        t0, c0 = time.perf_counter(), _cpu_s()
        cold = run_benchmark(specs, enc, cfg)
        cold_s, cold_cpu = time.perf_counter() - t0, _cpu_s() - c0
        load_mid = _load()
        t1 = time.perf_counter()
        warm = run_benchmark(specs, enc, cfg)
        warm_s = time.perf_counter() - t1

    # same-process baseline: 32 val images under the 3 instructions the dev suite uses, embedded by the model's
    # own encode (a tower pass per item) vs the harness encoder (image features reused, fresh memo)
    from geovec.data import RSICD
    from geovec.bench.encoders import BenchEncoder

    imgs = [s["image"] for s in RSICD(args.data_root / "rsicd", "val").samples[:32]]
    kinds = [("query", "retrieval"), ("document", "retrieval"), ("query", "classification")]
    items = []
    for side, kind in kinds:
        instr = enc.model.query_instruction(kind) if side == "query" else "Represent the given remote sensing image."
        items += [{"image": p, "instruction": instr} for p in imgs]
    t2 = time.perf_counter()
    enc.model.encode(items, batch_size=args.batch_size, show_progress_bar=False)
    direct_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    BenchEncoder(enc.model, batch_size=args.batch_size).encode(items)
    reuse_s = time.perf_counter() - t3

    rows = []
    for r, w in zip(cold, warm):
        t = r.get("timing", {})
        total = t.get("total_s", 0.0)
        rows.append({
            "task": r["task_name"], "status": r.get("status"), "n_queries": r.get("n_queries"),
            "n_candidates": r.get("n_candidates"), "main_score": (r["scores"][next(iter(r["scores"]))][0]["main_score"]
                                                               if r.get("status") == "ok" else None),
            "cold_total_s": total, "forward_s": t.get("forward_s"), "encode_s": t.get("encode_s"),
            "build_s": t.get("build_s"), "content_key_s": t.get("content_key_s"), "metrics_s": t.get("metrics_s"),
            "outside_forward_share": (1 - t["forward_s"] / total) if total else None,
            "cache_misses": t.get("cache_misses"), "cache_hits": t.get("cache_hits"),
            "warm_total_s": w.get("timing", {}).get("total_s"),
            "scores": (r["scores"][next(iter(r["scores"]))][0] if r.get("status") == "ok" else None),
        })
    fwd_total = sum(r["forward_s"] or 0 for r in rows)
    tasks_total = sum(r["cold_total_s"] or 0 for r in rows)
    result = {
        "suite": "rsmeb-dev", "model": enc.model_id, "revision": enc.revision, "data": str(args.data_root),
        "split": "val (RSICD) / eval ids (GeoTIFFs)",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "loadavg_before": load_before, "loadavg_after_cold": load_mid,
                    "loadavg_end": _load(), "note": "CPU shared with other jobs; loadavg = 1/5/15-min load"},
        "model_load_s": load_s, "cold_wall_s": cold_s, "cold_cpu_s": cold_cpu,
        "cold_wall_if_alone_estimate_s": cold_cpu / min(2, os.cpu_count() or 1), "warm_wall_s": warm_s,
        "forward_s": fwd_total, "outside_forward_share": 1 - fwd_total / tasks_total if tasks_total else None,
        "baseline_same_process": {"items": len(items), "distinct_images": len(imgs),
                                  "model_encode_s": direct_s, "harness_encode_reused_features_s": reuse_s},
        "tasks": rows,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"rsmeb_dev_{slug(enc.model_id)}{'_' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nrsmeb-dev, model {enc.model_id} ({enc.revision}); load avg before/after: {load_before} / {load_mid}")
    print(f"{'task':32s} {'cold s':>8s} {'fwd s':>8s} {'outside fwd':>11s} {'warm s':>7s} {'score':>7s}")
    for r in rows:
        share = f"{100 * r['outside_forward_share']:.1f}%" if r["outside_forward_share"] is not None else "-"
        score = f"{100 * r['main_score']:.2f}" if r["main_score"] is not None else "not run"
        print(f"{r['task']:32s} {r['cold_total_s'] or 0:8.1f} {r['forward_s'] or 0:8.1f} {share:>11s} "
              f"{r['warm_total_s'] or 0:7.2f} {score:>7s}")
    print(f"cold CPU time {cold_cpu:.0f} s (= {cold_cpu / min(2, os.cpu_count() or 1):.0f} s wall if it had the "
          f"{min(2, os.cpu_count() or 1)} cores to itself)")
    print(f"cold wall {cold_s:.1f} s (target < 900 s), warm wall {warm_s:.1f} s, outside forward "
          f"{100 * result['outside_forward_share']:.1f}% (target < 10%)")
    print(f"baseline: {len(items)} items ({len(imgs)} images x 3 instructions): model.encode {direct_s:.1f} s, "
          f"harness encoder with reused image features {reuse_s:.1f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
