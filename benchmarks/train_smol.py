"""Train the ``smol`` backbone (SmolLM2-135M-Instruct encoder) on RSICD TRAIN captions through the project's
trainer (``geovec.train.Trainer``) for a wall-clock budget, then save a geovec checkpoint.

    PYTHONPATH=src python benchmarks/train_smol.py --minutes 20 --out runs/smol-rsicd

Data: RSICD ``train`` split only (image -> caption and caption -> image, captions of one image never act
as each other's negatives), never ``val``. The decoder is adapted with LoRA (r 16, alpha 64, q/v) and the
new parts (projectors, head, temperature) train in full; the image is read as ``--image-grid``² tokens.
Progress goes to ``OUT/metrics.jsonl`` (the trainer's log) and ``OUT/run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("GEOVEC_DATA_ROOT", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default=str(ROOT / "runs" / "smol-rsicd"))
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget for the training steps")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-grid", type=int, default=4)
    ap.add_argument("--max-text-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calibration", type=int, default=48, help="items for the head standardisation")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--encoder-lr", type=float, default=2e-4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from geovec.models.config import GeoVecConfig
    from geovec.models.registry import build_untrained
    from geovec.train.config import TrainConfig
    from geovec.train.converters import caption_examples
    from geovec.train.data import write_jsonl
    from geovec.train.mixture import rsicd_split
    from geovec.train.trainer import Trainer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = rsicd_split(args.data_root, "train")
    jsonl = out / "rsicd_train_retrieval.jsonl"
    write_jsonl(caption_examples([(p, c) for p, c, _ in train]), jsonl)

    model_cfg = GeoVecConfig(name="geovec-smol-rsicd", backbone="smol", embed_dim=576, pooling="last",
                             image_grid=args.image_grid, max_text_tokens=args.max_text_tokens,
                             revision="rsicd-train-budget")
    model = build_untrained(model_cfg, seed=0)
    steps_cap = 10_000  # the clock stops the run; the schedule assumes about this many steps
    cfg = TrainConfig.from_dict(dict(
        base_model="geovec-smol-untrained", data=[{"path": str(jsonl)}], output_dir=str(out),
        lora={"r": 16, "alpha": 64, "targets": ["q_proj", "v_proj"]}, temperature=0.05, learn_temperature=True,
        batch_size=args.batch_size, lr=args.lr, encoder_lr=args.encoder_lr, warmup_steps=2, max_steps=steps_cap,
        save_every=0, log_every=1, seed=0, num_threads=args.threads, revision="rsicd-train-budget"))
    # standardise the pooled last-token states (see geovec.models.head_init) on a train sample
    from geovec.inputs import parse_item
    from geovec.models.head_init import standardize_head
    from geovec.train.data import read_jsonl

    sample = []
    import random

    for ex in random.Random(0).sample(read_jsonl(jsonl), args.calibration // 2):
        q, c = parse_item(ex.query), parse_item(ex.positives[0])
        sample += [q.with_instruction(model.query_instruction(ex.task)),
                   c.with_instruction(model.document_instruction(ex.task, c))]
    spread = standardize_head(model, [model.prepare(it) for it in sample])
    print("head standardised:", spread, flush=True)
    trainer = Trainer(cfg, model=model)
    started = time.time()
    budget = args.minutes * 60
    records = []
    while time.time() - started < budget:
        rec = trainer.train_step()
        trainer.log({"kind": "train", **rec})
        records.append(rec)
        print(f"step {rec['step']:3d} loss {rec['loss']:.4f} step_s {rec['step_s']:.1f} "
              f"elapsed {time.time() - started:.0f}s", flush=True)
    trainer.save_model(out / "model")
    summary = {
        "model": "smol (SmolLM2-135M-Instruct + EfficientNet-Lite0/GeoCLIP towers)", "data": "RSICD train captions",
        "steps": trainer.step, "pairs_seen": trainer.step * args.batch_size, "wall_s": round(time.time() - started, 1),
        "first_losses": [r["loss"] for r in records[:3]], "last_losses": [r["loss"] for r in records[-3:]],
        "head_standardisation": spread, "args": vars(args), "command": " ".join(["python"] + sys.argv),
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
