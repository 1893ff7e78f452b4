"""Encode throughput and peak memory of the default model on this CPU, per input kind, at batch 32, next to
the vision tower alone run in the same process (the upper bound for image items).

    python benchmarks/throughput.py [--model NAME] [--n 64] [--threads 2]

Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

import geovec
from geovec.models.towers import VisionTower

RESULTS = Path(__file__).parent / "results"


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 5 ms."""

    def __enter__(self):
        self.proc, self.peak, self.stop = psutil.Process(), 0, False
        self.start_rss = self.proc.memory_info().rss

        def sample():
            while not self.stop:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                time.sleep(0.005)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak_mib = max(self.peak, self.start_rss) / 2**20
        self.delta_mib = max(0, self.peak - self.start_rss) / 2**20


def scene_images(n: int, size: int = 224) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=64, help="items per input kind")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    args = ap.parse_args()

    model = geovec.load_model(args.model, num_threads=args.threads)
    imgs = scene_images(args.n)
    texts = [f"many buildings and green trees are around a {w} with {i} cars" for i, w in
             zip(range(args.n), ["playground", "parking lot", "church", "port"] * args.n)]
    kinds = {
        "text": texts,
        "image": imgs,
        "image+box": [{"image": im, "box": [16, 16, 120, 150]} for im in imgs],
        "image+text+box+latlon": [{"image": im, "text": t, "box": [16, 16, 120, 150], "lat": 52.0, "lon": 5.0}
                                  for im, t in zip(imgs, texts)],
    }
    model.encode(kinds["image+text+box+latlon"][:4])  # warm-up
    rows = {}

    # the upper bound: the vision tower alone on the same pixels, same batch size, same process
    tower: VisionTower = model.vision
    batches = [torch.stack([VisionTower.normalize(im) for im in imgs[i:i + args.batch_size]])
               for i in range(0, len(imgs), args.batch_size)]
    with PeakRSS() as mem, torch.inference_mode():
        t = time.perf_counter()
        for b in batches:
            tower(b)
        dt = time.perf_counter() - t
    rows["vision tower alone"] = {"items_per_s": len(imgs) / dt, "peak_rss_mib": mem.peak_mib, "delta_rss_mib": mem.delta_mib}

    for name, items in kinds.items():
        with PeakRSS() as mem:
            t = time.perf_counter()
            model.encode(items, batch_size=args.batch_size, show_progress_bar=False)
            dt = time.perf_counter() - t
        rows[name] = {"items_per_s": len(items) / dt, "peak_rss_mib": mem.peak_mib, "delta_rss_mib": mem.delta_mib}

    result = {
        "command": "python benchmarks/throughput.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
        "model": f"{model.model_id}@{model.revision}",
        "batch_size": args.batch_size, "items_per_kind": args.n, "image_size": 224,
        "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_avg_1m_at_end": os.getloadavg()[0],
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'input kind':<24}{'items/s':>10}{'peak RSS MiB':>14}{'+RSS MiB':>10}")
    for name, r in rows.items():
        print(f"{name:<24}{r['items_per_s']:>10.1f}{r['peak_rss_mib']:>14.0f}{r['delta_rss_mib']:>10.0f}")
    print(f"(load average {result['load_avg_1m_at_end']:.1f} on {os.cpu_count()} cores) -> {args.out}")


if __name__ == "__main__":
    main()
