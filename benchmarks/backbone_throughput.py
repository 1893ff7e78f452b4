"""Encode throughput (items/s) of each backbone behind the same encode API, measured in one process.

    PYTHONPATH=src python benchmarks/backbone_throughput.py [--data-root ../shared/data] [--n 64]

Backbones: ``minilm`` (the compact default, geovec-compact), ``smol`` (SmolLM2-135M-Instruct as the encoder,
untrained new parts: speed does not depend on training) and, with ``--tiny-qwen``, a tiny random-init
Qwen2-VL (pipeline overhead only; the real 2B model needs a GPU). Inputs: RSICD ``val`` captions and images
(224 px) when the data is present, else synthetic ones. The first batch of every kind is a warm-up and is
not timed. Writes ``benchmarks/results/backbone_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(ROOT))  # tests.fixtures.tiny: the tiny random-init Qwen2-VL of --tiny-qwen


def rsicd_val(data_root: Path, n: int):
    meta = json.loads((data_root / "rsicd" / "dataset_rsicd.json").read_text())
    val = [im for im in meta["images"] if im["split"] == "val"][:n]
    images = [data_root / "rsicd" / "RSICD_images" / im["filename"] for im in val]  # Path = image (a str is text)
    captions = [s["raw"].strip() for im in val for s in im["sentences"] if s["raw"].strip(" .")][:n]
    return images, captions, "rsicd val"


def synthetic(n: int):
    rng = np.random.default_rng(0)
    images = [(rng.random((224, 224, 3)) * 255).astype(np.uint8) for _ in range(n)]
    captions = [f"many buildings and {i} green trees are around a playground ." for i in range(n)]
    return images, captions, "synthetic"


def workloads(images, captions, n):
    rng = np.random.default_rng(1)
    lat = rng.uniform(-60, 70, n)
    lon = rng.uniform(-180, 180, n)
    return {
        "text": captions[:n],
        "image": images[:n],
        "image+box": [{"image": im, "box": [32, 48, 160, 200]} for im in images[:n]],
        "location": [{"lat": float(a), "lon": float(b)} for a, b in zip(lat, lon)],
        "image+text+box+location": [{"image": im, "box": [32, 48, 160, 200], "text": c, "lat": float(a),
                                     "lon": float(b)} for im, c, a, b in zip(images, captions, lat, lon)][:n],
    }


def measure(model, items, batch_size: int) -> float:
    model.encode(items[:batch_size], task="retrieval", batch_size=batch_size)  # warm-up
    t = time.perf_counter()
    model.encode(items, task="retrieval", batch_size=batch_size)
    return len(items) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("GEOVEC_DATA_ROOT", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--n", type=int, default=64, help="timed items per input kind")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny-qwen", action="store_true", help="also time a tiny random-init Qwen2-VL")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backbone_throughput.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import geovec
    from geovec.models.config import GeoVecConfig
    from geovec.models.registry import build_untrained

    root = Path(args.data_root)
    n = args.n
    images, captions, source = rsicd_val(root, n) if (root / "rsicd").exists() else synthetic(n)
    loads = workloads(images, captions, n)

    builders = {
        "minilm (geovec-compact)": lambda: geovec.load_model("geovec-compact"),
        "smol (SmolLM2-135M)": lambda: build_untrained(GeoVecConfig(name="geovec-smol-untrained", backbone="smol",
                                                                     embed_dim=576, pooling="last")),
    }
    if args.tiny_qwen:
        def tiny_qwen():
            from geovec.models.qwen2vl import Qwen2VLEmbedder, qwen_config
            from tests.fixtures.tiny import write_tiny_qwen2vl

            d = write_tiny_qwen2vl(tempfile.mkdtemp(prefix="tiny-qwen2vl-"))
            return Qwen2VLEmbedder(qwen_config(d, max_pixels=224 * 224, device="cpu"))

        builders["qwen2-vl (tiny random-init, 2 layers d=64)"] = tiny_qwen

    results = {}
    load_before = os.getloadavg()
    for name, build in builders.items():
        t = time.perf_counter()
        model = build()
        load_s = time.perf_counter() - t
        params = sum(p.numel() for p in model.parameters())
        row = {"load_s": round(load_s, 2), "params": params}
        for kind, items in loads.items():
            row[kind] = round(measure(model, items[:n], args.batch_size), 2)
            print(f"{name:45s} {kind:25s} {row[kind]:8.2f} items/s", flush=True)
        results[name] = row
        del model

    out = {
        "benchmark": "backbone_throughput",
        "unit": "items/s (encode, fp32, inference)",
        "inputs": source, "items_per_kind": args.n, "batch_size": args.batch_size, "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
        "load_average_1m_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "torch": torch.__version__, "command": " ".join(["python"] + sys.argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    kinds = list(loads)
    print("\n| backbone | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in kinds) + " |")


if __name__ == "__main__":
    main()
