"""Fine-tune the global path's vision top (EfficientNet blocks 11-15 + head conv) with the probe's MLP, on cached
block-10 activations of RSICD train, and build a dual-path model from it.

    python benchmarks/train_global_top.py [--data-root ../shared/data] [--probe ~/.cache/geovec/probe/model]
        [--encoder src/geovec/models/weights/geovec-compact] [--out ~/.cache/geovec/global-top/model]

Resumable: activations are cached under ``--cache`` (default the probe's cache folder) and the run checkpoints
after every epoch under ``--run-dir``; rerunning the command continues where it stopped. Prints the RSICD val
retrieval (published protocol, every caption a query / candidate) per epoch and writes
``benchmarks/results/global_top_train.json``. Trains on RSICD ``train`` only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from geovec.paths import cache_dir, default_data_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--probe", type=Path, default=cache_dir() / "probe" / "model")
    ap.add_argument("--encoder", type=Path, default=Path(__file__).resolve().parents[1] / "src/geovec/models/weights/geovec-compact")
    ap.add_argument("--cache", type=Path, default=cache_dir() / "probe")
    ap.add_argument("--run-dir", type=Path, default=cache_dir() / "global-top")
    ap.add_argument("--out", type=Path, default=None, help="dual-path model folder (default <run-dir>/model)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr-top", type=float, default=2e-4)
    ap.add_argument("--lr-head", type=float, default=5e-4)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--encoder-weight", type=float, default=1.0)
    ap.add_argument("--revision", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "global_top_train.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    from geovec.models.dual_path import DualPathModel
    from geovec.models.probe import ProbeModel
    from geovec.train.probe import caption_retrieval, caption_split, text_embedding_cache
    from geovec.train.global_top import VisionTop, block_activation_cache, embed_activations, train_top
    from geovec.train.cached_loop import TopRun

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    probe = ProbeModel.load(args.probe)
    root = args.data_root / "rsicd"
    tr_images, tr_caps, tr_owner = caption_split(root, "train")
    va_images, va_caps, va_owner = caption_split(root, "val")
    tr_text = text_embedding_cache(probe, tr_caps, args.cache, "rsicd-train", log=log)
    va_text = np.asarray(text_embedding_cache(probe, va_caps, args.cache, "rsicd-val", log=log), dtype=np.float32)
    tr_act = block_activation_cache(probe.vision, tr_images, args.cache, "rsicd-train", log=log)
    va_act = block_activation_cache(probe.vision, va_images, args.cache, "rsicd-val", log=log)
    shape = tr_act.act_shape

    top = VisionTop(probe.vision.net)
    head = copy.deepcopy(probe.image_head)
    logit_scale = torch.nn.Parameter(probe.logit_scale.detach().clone())
    for p in list(top.parameters()) + list(head.parameters()):
        p.requires_grad_(True)

    def evaluate() -> dict:
        return caption_retrieval(embed_activations(top, head, va_act, shape), va_text, va_owner)

    base = evaluate()
    log(f"start (the probe, top frozen): val mR {base['mR']:.2f} (n = {base['n_i2t']} + {base['n_t2i']} queries)")
    run = TopRun(args.run_dir)
    start_epoch, opt_state, past = run.resume(top, head, logit_scale, log)

    history = past + train_top(top, head, logit_scale, tr_act, shape, tr_text, tr_owner, epochs=args.epochs,
                               batch_size=args.batch_size, lr_top=args.lr_top, lr_head=args.lr_head,
                               augment=not args.no_augment, evaluate=evaluate, log=log, checkpoint=run.save,
                               start_epoch=start_epoch, opt_state=opt_state)
    out = args.out or args.run_dir / "model"
    model = DualPathModel.from_parts(args.encoder, args.probe, encoder_weight=args.encoder_weight,
                                     vision_top=top, image_head=head, revision=args.revision)
    model.save_pretrained(out)
    log(f"saved {out} (revision {model.revision})")
    record = {"command": "python benchmarks/train_global_top.py", "data": "RSICD train (AMFMN train minus the val carve-out)",
              "n_train_images": len(tr_images), "n_train_captions": len(tr_caps),
              "val": {"split": "RSICD val", "n_images": len(va_images), "n_captions": len(va_caps),
                      "protocol": "every caption a candidate (i2t) and a query (t2i); mR = mean of R@1/5/10 both ways"},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "probe_start": base, "epochs": history, "wall_s": round(time.perf_counter() - t_start, 1),
              "loadavg_end": [round(x, 2) for x in os.getloadavg()], "model_dir": str(out)}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {args.results}")


if __name__ == "__main__":
    main()
