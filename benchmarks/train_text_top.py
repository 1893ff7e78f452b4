"""Fine-tune the top layers of the text tower (and the image MLP) of the global path on cached states.

    python benchmarks/train_text_top.py --split 4          # layers 4-5 of all-MiniLM-L6-v2 train; resumable

1. Caches (resumable, under ``--cache``, default ``~/.cache/geovec/probe``): the pooled EfficientNet-Lite0
   features of RSICD train (the probe's dihedral views) and val, NWPU-RESISC12 (zero-shot guard, never trained
   on), and the layer-``split`` token states of every distinct RSICD train / val caption and class prompt.
2. Training (``geovec.train.text_top``): a copy of the layers ``split..`` and the probe's image MLP, symmetric
   InfoNCE on (random cached view, random caption), AdamW with separate learning rates, cosine decay.
   Checkpoint after every epoch in ``--run-dir``; rerunning continues from it.
3. After every epoch: RSICD val retrieval (published protocol, mR), RSICD val scene P@1 (31 classes) and
   NWPU-RESISC12 zero-shot P@1 (12 classes, the benchmark's template). These are dev scores used for model
   selection, so they are optimistic.
4. Writes ``--results`` (default ``benchmarks/results/text_top_train.json``); with ``--encoder`` builds the
   dual-path model (``<run-dir>/model``) whose global path carries the trained text top and image MLP (the last
   epoch's weights unless ``--pick best``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))

import geovec  # noqa: E402,F401  (offline / thread environment before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from geovec.paths import cache_dir, default_data_root  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--probe", type=Path, default=cache_dir() / "probe" / "model")
    ap.add_argument("--cache", type=Path, default=cache_dir() / "probe")
    ap.add_argument("--run-dir", type=Path, default=None, help="default ~/.cache/geovec/text-top/split<N>")
    ap.add_argument("--split", type=int, default=4, help="first trained layer of the 6-layer text tower")
    ap.add_argument("--views", default="id,hflip,rot90")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr-top", type=float, default=3e-5)
    ap.add_argument("--lr-head", type=float, default=3e-4)
    ap.add_argument("--class-prob", type=float, default=0.0,
                    help="probability of drawing the image's RSICD train class prompt instead of a caption")
    ap.add_argument("--hard-classes", type=int, default=0,
                    help="hard negatives: batches of images of about this many RSICD train classes (0 = random batches)")
    ap.add_argument("--hard-from", type=int, default=2, help="first epoch (0-based) with class-blocked batches")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", type=Path, default=None,
                    help="single-encoder / dual-path checkpoint: build <run-dir>/model as a dual-path model")
    ap.add_argument("--revision", default=None)
    ap.add_argument("--pick", choices=("last", "best"), default="last",
                    help="weights for the model: the last epoch (no dev selection) or the best val mR epoch")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "text_top_train.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run_dir = args.run_dir or cache_dir() / "text-top" / f"split{args.split}"
    t_start = time.perf_counter()

    from geovec.bench.builders import CLASS_TEMPLATE
    from geovec.data import NWPURESISC12, RSICDScenes
    from geovec.models.probe import ProbeModel
    from geovec.train.probe import caption_retrieval, caption_split, embed_features, image_feature_cache
    from geovec.models.text_top import TextTop
    from geovec.train.cached_loop import TopRun
    from geovec.train.text_top import embed_text_states, text_state_cache, train_text_top

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    probe = ProbeModel.load(args.probe)
    bert, tok = probe.text.model, probe.text.tokenizer
    root = args.data_root
    tr_images, tr_caps, tr_owner = caption_split(root / "rsicd", "train")
    va_images, va_caps, va_owner = caption_split(root / "rsicd", "val")
    views = [v for v in args.views.split(",") if v]
    tr_feats = [image_feature_cache(probe, tr_images, args.cache, "rsicd-train", view=v, log=log) for v in views]
    va_feats = image_feature_cache(probe, va_images, args.cache, "rsicd-val", log=log)
    nwpu = NWPURESISC12(root / "nwpu_resisc12", "all")
    nw_feats = image_feature_cache(probe, [s["image"] for s in nwpu.samples], args.cache, "nwpu12", log=log)
    scenes = RSICDScenes(root / "rsicd", "val")
    by_file = {Path(s["image"]).name: s for s in scenes.samples}
    va_labels = np.array([by_file[Path(p).name]["label"] for p in va_images])
    scene_prompts = [CLASS_TEMPLATE.format(n) for n in scenes.prompt_names]
    nwpu_prompts = [CLASS_TEMPLATE.format(n) for n in nwpu.prompt_names]
    nw_labels = np.array([s["label"] for s in nwpu.samples])

    tr_scenes = RSICDScenes(root / "rsicd", "train")
    tr_by_file = {Path(s["image"]).name: s for s in tr_scenes.samples}
    tr_class_prompts = [CLASS_TEMPLATE.format(tr_by_file[Path(p).name]["prompt_name"]) for p in tr_images]
    distinct = sorted(set(tr_caps) | (set(tr_class_prompts) if args.class_prob > 0 else set()))
    row = {t: i for i, t in enumerate(distinct)}
    tr_states = text_state_cache(bert, tok, distinct, args.split, args.cache, "rsicd-train-distinct", log=log)
    eval_texts = sorted(set(va_caps) | set(scene_prompts) | set(nwpu_prompts))
    eval_row = {t: i for i, t in enumerate(eval_texts)}
    ev_states = text_state_cache(bert, tok, eval_texts, args.split, args.cache, "rsicd-val-eval", log=log)
    log(f"RSICD train {len(tr_images)} images / {len(tr_caps)} captions ({len(distinct)} distinct); "
        f"val {len(va_images)} / {len(va_caps)}; NWPU-RESISC12 {len(nwpu.samples)}")

    top = TextTop(bert, args.split)
    head = copy.deepcopy(probe.image_head)
    logit_scale = torch.nn.Parameter(probe.logit_scale.detach().clone())
    for p in list(top.parameters()) + list(head.parameters()):
        p.requires_grad_(True)

    def zero_shot(img: np.ndarray, emb: np.ndarray, prompts: list[str], labels: np.ndarray) -> float:
        cls = emb[[eval_row[p] for p in prompts]]
        return float(100 * np.mean((img @ cls.T).argmax(1) == labels))

    def evaluate() -> dict:
        head.eval()
        emb = embed_text_states(top, ev_states)
        va_img = embed_features(head, va_feats)
        out = caption_retrieval(va_img, emb[[eval_row[c] for c in va_caps]], va_owner)
        out["rsicd_scene_p@1"] = zero_shot(va_img, emb, scene_prompts, va_labels)
        out["nwpu12_p@1"] = zero_shot(embed_features(head, nw_feats), emb, nwpu_prompts, nw_labels)
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}

    base = evaluate()
    log(f"start (the probe): val mR {base['mR']:.2f}, RSICD scene {base['rsicd_scene_p@1']:.1f}, "
        f"NWPU-12 {base['nwpu12_p@1']:.1f} (n = {base['n_i2t']} + {base['n_t2i']} / {len(va_images)} / {len(nw_labels)})")

    run = TopRun(run_dir)
    start_epoch, opt_state, past = run.resume(top, head, logit_scale, log)

    def checkpoint(epoch: int, state: dict) -> None:
        hist = run.save(epoch, state)
        best = max(hist, key=lambda h: h["val"]["mR"])
        if best["epoch"] == epoch:  # the best epoch so far by val mR (dev selection: optimistic)
            torch.save({"top": state["top"], "head": state["head"], "logit_scale": state["logit_scale"],
                        "split": args.split, "epoch": epoch, "val": best["val"]}, run_dir / "best.pt")

    history = past + train_text_top(
        top, head, logit_scale, tr_feats, tr_states, [row[c] for c in tr_caps], tr_owner, epochs=args.epochs,
        batch_size=args.batch_size, lr_top=args.lr_top, lr_head=args.lr_head, seed=args.seed, evaluate=evaluate,
        log=log, checkpoint=checkpoint, start_epoch=start_epoch, opt_state=opt_state,
        class_text=[row[t] for t in tr_class_prompts] if args.class_prob > 0 else None, class_prob=args.class_prob,
        image_class=[tr_by_file[Path(p).name]["label"] for p in tr_images], hard_classes=args.hard_classes,
        hard_from=args.hard_from)
    record = {"command": "python benchmarks/train_text_top.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "data": "RSICD train (AMFMN train minus the val carve-out)", "n_train_images": len(tr_images),
              "n_train_captions": len(tr_caps), "n_distinct_train_captions": len(distinct),
              "dev": {"RSICD val retrieval": {"n_images": len(va_images), "n_captions": len(va_caps),
                                              "protocol": "every caption a candidate (i2t) and a query (t2i); mR"},
                      "RSICD val scenes": {"n": len(va_images), "classes": len(scene_prompts)},
                      "NWPU-RESISC12 zero-shot": {"n": len(nw_labels), "classes": len(nwpu_prompts)},
                      "note": "dev scores used for model selection: optimistic"},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "probe_start": base, "epochs": history, "wall_s": round(time.perf_counter() - t_start, 1),
              "run_dir": str(run_dir)}
    if args.encoder is not None:
        from geovec.models.dual_path import DualPathModel

        best = torch.load(run_dir / ("best.pt" if args.pick == "best" else "checkpoint.pt"), weights_only=False)
        top.load_state_dict(best["top"])
        head.load_state_dict(best["head"])
        model = DualPathModel.from_parts(args.encoder, args.probe, image_head=head, text_top=top,
                                         revision=args.revision)
        out = run_dir / "model"
        model.save_pretrained(out)
        record["model_dir"], record["model_revision"], record["best_epoch"] = str(out), model.revision, best["epoch"]
        log(f"saved {out} (revision {model.revision}, epoch {best['epoch']})")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {args.results}")
    return record


if __name__ == "__main__":
    main()
