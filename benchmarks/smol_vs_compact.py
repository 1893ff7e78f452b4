"""RSICD ``val`` image<->text retrieval of several geovec models on the same items, in one process:
R@1/5/10 both directions and mR (their mean), the usual RSICD protocol, on a prefix of the val split.

    PYTHONPATH=src python benchmarks/smol_vs_compact.py --images 50 --captions 2 \\
        --model geovec-compact --model geovec-smol-untrained --model runs/smol-rsicd/model

Queries use the model's ``retrieval`` instruction (``encode_query``), candidates the generic one
(``encode_document``), as RSMEB prescribes. Images are the first ``--images`` val images in the file's order,
each with its first ``--captions`` non-empty captions. Never reads the train split. Writes
``benchmarks/results/smol_vs_compact.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))


def val_subset(data_root: Path, n_images: int, n_captions: int):
    meta = json.loads((data_root / "rsicd" / "dataset_rsicd.json").read_text())
    val = [im for im in meta["images"] if im["split"] == "val"][:n_images]
    images = [data_root / "rsicd" / "RSICD_images" / im["filename"] for im in val]  # Path = image (a str is text)
    captions, owner = [], []
    for i, im in enumerate(val):
        caps = [s["raw"].strip() for s in im["sentences"] if s["raw"].strip(" .")][:n_captions]
        captions += caps
        owner += [i] * len(caps)
    return images, captions, np.array(owner)


def recall(scores: np.ndarray, gold: list[set[int]], ks=(1, 5, 10)) -> dict[str, float]:
    top = np.argsort(-scores, axis=1)[:, : max(ks)]
    return {f"R@{k}": 100.0 * float(np.mean([bool(set(t[:k].tolist()) & g) for t, g in zip(top, gold)])) for k in ks}


def evaluate(model, images, captions, owner, batch_size: int) -> dict:
    t = time.perf_counter()
    img_q = model.encode_query(images, task="retrieval", batch_size=batch_size)
    img_d = model.encode_document(images, task="retrieval", batch_size=batch_size)
    txt_q = model.encode_query(captions, task="retrieval", batch_size=batch_size)
    txt_d = model.encode_document(captions, task="retrieval", batch_size=batch_size)
    seconds = time.perf_counter() - t
    i2t = recall(img_q @ txt_d.T, [set(np.flatnonzero(owner == i).tolist()) for i in range(len(images))])
    t2i = recall(txt_q @ img_d.T, [{int(o)} for o in owner])
    row = {f"i2t_{k}": round(v, 2) for k, v in i2t.items()}
    row.update({f"t2i_{k}": round(v, 2) for k, v in t2i.items()})
    row["mR"] = round(float(np.mean(list(i2t.values()) + list(t2i.values()))), 2)
    row["encode_s"] = round(seconds, 1)
    row["items_per_s"] = round((2 * len(images) + 2 * len(captions)) / seconds, 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("GEOVEC_DATA_ROOT", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--model", action="append", required=True, help="name or checkpoint directory (repeat)")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--captions", type=int, default=2, help="captions per image (first non-empty ones)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "smol_vs_compact.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import geovec

    images, captions, owner = val_subset(Path(args.data_root), args.images, args.captions)
    results = {}
    for name in args.model:
        model = geovec.load_model(name)
        row = evaluate(model, images, captions, owner, args.batch_size)
        row.update(model_id=model.model_id, revision=model.revision, backbone=model.config.backbone)
        results[name] = row
        print(name, json.dumps(row), flush=True)
        del model
    from math import comb

    n, g = len(captions), args.captions  # chance that one of an image's g captions is in a random top k
    chance = {f"i2t_R@{k}": round(100 * (1 - comb(n - g, k) / comb(n, k)), 2) for k in (1, 5, 10)}
    out = {"benchmark": "rsicd_val_retrieval_subset", "data": "RSICD val (local carve-out), never train",
           "images": len(images), "captions": len(captions), "command": " ".join(["python"] + sys.argv),
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "chance_i2t": chance,
           "chance_t2i": {f"R@{k}": round(100 * k / len(images), 2) for k in (1, 5, 10)}, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    cols = ["i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mR"]
    print("\n| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
