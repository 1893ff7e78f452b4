"""Training throughput (pairs/s) of geovec-compact on this CPU, and the speed-up of the frozen-tower caches.

Same process, same batch of RSICD TRAIN image-caption pairs, interleaved repeats of three settings:
  1. no caches: the vision tower runs in every step (pixels decoded and resized too);
  2. vision feature cache: cached EfficientNet maps replace the tower (bit-identical features);
  3. feature cache + text-state cache (locked text path, warm cache).
Writes benchmarks/results/train_throughput.json.

    PYTHONPATH=src python benchmarks/train_throughput.py --data-root ../shared/data --pairs 16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image-grid", type=int, default=4)
    ap.add_argument("--run-metrics", default=None, help="metrics.jsonl of the real run, to quote its pairs/s")
    ap.add_argument("--out", default="benchmarks/results/train_throughput.json")
    a = ap.parse_args()

    from geovec.models.config import GeoVecConfig
    from geovec.models.registry import build_untrained
    from geovec.train.config import TrainConfig
    from geovec.train.converters import caption_examples
    from geovec.train.feature_cache import FeatureCache
    from geovec.train.mixture import rsicd_split
    from geovec.train.trainer import Trainer

    train = rsicd_split(a.data_root, "train")[: a.pairs]
    examples = [e for e in caption_examples([(p, c[:1]) for p, c, _ in train]) if "image" in e.query]
    model = build_untrained(GeoVecConfig(image_grid=a.image_grid))
    trainable = ["vision_proj.", "regions.", "location_proj.", "head.", "logit_scale"]
    tmp = Path(tempfile.mkdtemp())
    settings = {
        "no_cache": dict(feature_cache=None, text_cache=False),
        "feature_cache": dict(feature_cache=str(tmp / "f"), text_cache=False),
        "feature_and_text_cache": dict(feature_cache=str(tmp / "f"), text_cache=True),
    }
    trainers = {}
    for name, kw in settings.items():
        cfg = TrainConfig(output_dir=str(tmp / name), trainable=trainable, batch_size=len(examples), max_steps=10**6,
                          warmup_steps=1, save_every=0, **kw)
        trainers[name] = Trainer(cfg, model=model, data=[examples])
    FeatureCache(tmp / "f", model).fill([e.query["image"] for e in examples], show_progress_bar=False)
    trainers["feature_and_text_cache"].train_step()  # warm the text cache
    times = {k: [] for k in settings}
    for _ in range(a.repeats):
        for name, tr in trainers.items():
            t = time.perf_counter()
            tr.train_step()
            times[name].append(time.perf_counter() - t)
    result = {
        "model": "geovec-compact (untrained start)", "image_grid": a.image_grid, "trainable": trainable,
        "data": "RSICD train split, image->caption pairs", "pairs_per_step": len(examples),
        "repeats": a.repeats, "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "note": "2-core CPU shared with other jobs; medians of interleaved repeats",
        "settings": {k: {"median_step_s": float(np.median(v)), "pairs_per_s": len(examples) / float(np.median(v))}
                     for k, v in times.items()},
    }
    # the tower alone vs reading its cached maps, same 16 images, interleaved
    from geovec.inputs import Item

    paths = [e.query["image"] for e in examples]
    cache = FeatureCache(tmp / "f", model)
    tower_s, cached_s = [], []
    for _ in range(max(3, a.repeats)):
        t = time.perf_counter()
        prepared = [model.prepare(Item(image=p, order=("image",))) for p in paths]
        with torch.no_grad():
            model.vision_features([pr.pixels for pr in prepared])
        tower_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        [cache.get(p) for p in paths]
        cached_s.append(time.perf_counter() - t)
    result["vision_features"] = {
        "images": len(paths), "decode_resize_tower_s": float(np.median(tower_s)),
        "cache_read_s": float(np.median(cached_s)),
        "speedup": float(np.median(tower_s) / max(1e-9, np.median(cached_s)))}
    base = result["settings"]["no_cache"]["median_step_s"]
    for k in result["settings"]:
        result["settings"][k]["speedup_vs_no_cache"] = base / result["settings"][k]["median_step_s"]
    if a.run_metrics:
        rows = [json.loads(l) for l in open(a.run_metrics)]
        tr = list({r["step"]: r for r in rows if r.get("kind") == "train"}.values())  # resumed steps once
        result["real_run"] = {"metrics": a.run_metrics, "steps": len(tr),
                              "median_pairs_per_s": float(np.median([r["pairs_per_s"] for r in tr])),
                              "median_step_s": float(np.median([r["step_s"] for r in tr])),
                              "queries_per_step": tr[-1]["queries"] if tr else None}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
