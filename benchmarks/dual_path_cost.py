"""Per-item cost of the dual-path default against its encoder half alone, measured in the same process.

    python benchmarks/dual_path_cost.py --encoder /path/to/r6 [--model geovec-compact] [--n 64] [--repeats 3]

Embeds the same RSICD val images, captions and image+box items with both models, alternating them in each
repeat (so a busy machine slows both alike), and reports items/s and the ratio (median of the repeats).
Writes ``benchmarks/results/dual_path_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import geovec
from geovec.paths import default_data_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", type=Path, required=True, help="single-encoder checkpoint (the encoder half alone)")
    ap.add_argument("--model", default="geovec-compact")
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dual_path_cost.json")
    args = ap.parse_args()
    from geovec.data import RSICD

    samples = RSICD(args.data_root / "rsicd", "val").samples[: args.n]
    kinds = {
        "image": [{"image": s["image"]} for s in samples],
        "text": [{"text": s["captions"][0]} for s in samples],
        "image+box": [{"image": s["image"], "box": [20, 30, 150, 170]} for s in samples],
    }
    models = {"encoder half": geovec.load_model(args.encoder, num_threads=args.threads),
              "dual-path": geovec.load_model(args.model, num_threads=args.threads)}
    for m in models.values():  # warm-up
        m.encode(kinds["image"][:8] + kinds["text"][:8], batch_size=32, show_progress_bar=False)
    times: dict = {k: {name: [] for name in models} for k in kinds}
    load0 = [round(x, 2) for x in os.getloadavg()]
    for _ in range(args.repeats):
        for kind, items in kinds.items():
            for name, m in models.items():
                t = time.perf_counter()
                m.encode(items, batch_size=32, show_progress_bar=False)
                times[kind][name].append(time.perf_counter() - t)
    rows = {}
    for kind in kinds:
        rate = {name: args.n / float(np.median(v)) for name, v in times[kind].items()}
        rows[kind] = {"items_per_s": rate, "cost_ratio": rate["encoder half"] / rate["dual-path"]}
        print(f"{kind:10s} encoder half {rate['encoder half']:7.1f}/s  dual-path {rate['dual-path']:7.1f}/s  "
              f"cost ratio {rows[kind]['cost_ratio']:.2f}x")
    result = {"command": "python benchmarks/dual_path_cost.py --encoder <r6 checkpoint>", "n": args.n,
              "repeats": args.repeats, "threads": args.threads, "batch_size": 32,
              "models": {k: f"{m.model_id}@{m.revision}" for k, m in models.items()}, "rows": rows,
              "loadavg_before": load0, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
