"""Adapt the global path's image head of a dual-path model to object crops and sensor views (geovec.train.global_head).

    python benchmarks/train_global_head.py --out /work/runs/gh/model --revision r27-2026-12-05

1. Caches (resumable, under ``--cache``, default ``~/.cache/geovec/probe``, shared with ``train_probe.py``): pooled
   EfficientNet-Lite0 features of the RSICD train images (clean view = the anchor, plus the ``--sensor-views``), of
   the NWPU VHR-10 *train* boxes cut out (``--region-views``), and, for evaluation only, of the VHR-10 dev boxes,
   RSICD val and NWPU-RESISC12.
2. Training: the model's own image head, ``--steps`` steps; a checkpoint after every epoch in ``--run-dir``, so a
   rerun continues from it.
3. After every epoch, the global half alone (dev scores, so optimistic where they choose settings): VHR-10 dev
   box -> class P@1 (10 names), NWPU-RESISC12 zero-shot P@1, RSICD val retrieval mR, and the head's agreement with
   itself before training on the RSICD train and val images.
4. Writes the adapted dual-path model to ``--out`` (only the image head differs) and ``--results``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))

import geovec  # noqa: E402,F401  (offline / thread environment before torch loads)

from geovec.paths import cache_dir, default_data_root  # noqa: E402

TEMPLATES = ("a remote sensing image of {}.", "{}")


def main(argv: list[str] | None = None) -> dict:
    from geovec.train.global_head import HeadAdaptConfig

    d = HeadAdaptConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="geovec-compact", help="a dual-path model (name or folder)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the adapted model")
    ap.add_argument("--revision", required=True, help="the adapted model's revision")
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--cache", type=Path, default=cache_dir() / "probe")
    ap.add_argument("--run-dir", type=Path, default=None, help="default <out>.run")
    ap.add_argument("--region-views", default="id,hflip,rot90,rot270", help="dihedral views of the box crops")
    ap.add_argument("--sensor-views", default="sensor0,sensor1",
                    help="simulated views of the RSICD train images (sensor<K>; empty: none)")
    ap.add_argument("--regions", type=Path, default=None,
                    help="labelled boxes of your own imagery (JSON lines: image, box, class) instead of the VHR-10 "
                         "train part; see geovec.train.global_head.read_region_file")
    ap.add_argument("--no-regions", action="store_true", help="leave the labelled boxes out")
    for name in ("steps", "steps_per_epoch", "lr", "region_weight", "sensor_weight", "anchor_weight", "temperature",
                 "seed"):
        ap.add_argument("--" + name.replace("_", "-"), type=type(getattr(d, name)), default=getattr(d, name))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "global_head_train.json")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from torch.nn import functional as F

    from geovec.data import NWPURESISC12, NWPUVHR10
    from geovec.models.probe import ProbeConfig, ProbeModel
    from geovec.train.global_head import RegionSet, adapt_image_head, agreement_with, read_region_file
    from geovec.train.probe import caption_retrieval, caption_split, image_feature_cache, parse_views

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    try:
        region_views = parse_views(args.region_views)
        sensor_views = parse_views(args.sensor_views) if args.sensor_views.strip() else []
    except ValueError as e:
        ap.error(str(e))
    root, cache = Path(args.data_root).expanduser(), Path(args.cache).expanduser()
    if args.regions is not None:
        try:
            train_objs, classes = read_region_file(args.regions)
        except (OSError, ValueError) as e:
            ap.error(f"--regions: {e}")
        region_source = str(args.regions)
    else:
        classes, train_objs = list(NWPUVHR10.prompt_names), NWPUVHR10(root / "nwpu_vhr10", "train").samples
        region_source = "NWPU VHR-10 train part"
    model = geovec.load_model(args.model, backend="torch", lazy=False)
    if getattr(model.config, "architecture", None) != "dual-path":
        ap.error(f"--model {args.model}: a dual-path model is needed (its global path has the image head)")
    gp = model.global_path
    probe = ProbeModel(ProbeConfig(vision=model.config.vision, image_size=gp.image_size))  # the frozen towers only

    # 1. caches --------------------------------------------------------------------------------------------------
    def feats(images, name, view="id", boxes=None):
        return np.asarray(image_feature_cache(probe, images, cache, name, view=view, boxes=boxes, log=log), np.float32)

    tr_images, _, _ = caption_split(root / "rsicd", "train")
    va_images, va_caps, va_owner = caption_split(root / "rsicd", "val")
    anchor = feats(tr_images, "rsicd-train")
    sensors = [feats(tr_images, "rsicd-train", v) for v in sensor_views]
    va_feats = feats(va_images, "rsicd-val")
    dev_objs = NWPUVHR10(root / "nwpu_vhr10", "dev").samples
    box_args = {"boxes": [o["box"] for o in train_objs]}
    cache_name = "vhr10-train-boxes" if args.regions is None else f"regions-{args.regions.stem}"
    region_feats = None if args.no_regions else np.stack(
        [feats([o["image"] for o in train_objs], cache_name, v, **box_args) for v in region_views], axis=1)
    dev_feats = feats([o["image"] for o in dev_objs], "vhr10-dev-boxes", boxes=[o["box"] for o in dev_objs])
    dev_labels = np.array([o["label"] for o in dev_objs])
    nwpu = NWPURESISC12(root / "nwpu_resisc12", "all")
    nw_feats = feats([s["image"] for s in nwpu.samples], "nwpu12")
    nw_labels = np.array([s["label"] for s in nwpu.samples])
    vhr_classes = list(NWPUVHR10.prompt_names)
    with torch.no_grad():
        class_texts = torch.stack([gp.sentence_embeddings([t.format(c) for c in classes]).float() for t in TEMPLATES])
        vhr_texts = gp.sentence_embeddings([TEMPLATES[0].format(c) for c in vhr_classes]).float()
        nw_texts = gp.sentence_embeddings([TEMPLATES[0].format(c) for c in nwpu.prompt_names]).float()
        cap_emb = gp.sentence_embeddings(va_caps).float().numpy()
    log(f"anchor: RSICD train {len(tr_images)} images, sensor views {sensor_views or 'none'}; regions: {region_source} "
        f"{len(train_objs)} boxes of {len(classes)} classes x {len(region_views)} views"
        f"{' (left out)' if args.no_regions else ''}; "
        f"dev: {len(dev_objs)} VHR-10 boxes, {len(nw_labels)} RESISC12 scenes, {len(va_images)} RSICD val images")

    # 2. training --------------------------------------------------------------------------------------------------
    head = gp.image_head
    original = copy.deepcopy(head).eval()

    def unit(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(head(torch.from_numpy(x)), dim=-1)

    def evaluate() -> dict:
        head.eval()
        out = {"vhr10_box_class_p@1": float(100 * ((unit(dev_feats) @ vhr_texts.T).argmax(1).numpy()
                                                   == dev_labels).mean()),
               "nwpu12_p@1": float(100 * ((unit(nw_feats) @ nw_texts.T).argmax(1).numpy() == nw_labels).mean()),
               "rsicd_val_mR": caption_retrieval(unit(va_feats).numpy(), cap_emb, va_owner)["mR"],
               "agreement_rsicd_train": agreement_with(head, original, anchor[:2000]),
               "agreement_rsicd_val": agreement_with(head, original, va_feats)}
        return {k: round(v, 4) for k, v in out.items()}

    before = evaluate()
    log("before: " + ", ".join(f"{k} {v}" for k, v in before.items()))
    cfg = HeadAdaptConfig(**{k: getattr(args, k) for k in ("steps", "steps_per_epoch", "lr", "region_weight",
                                                            "sensor_weight", "anchor_weight", "temperature", "seed")})
    regions = None if region_feats is None else RegionSet(region_feats, np.array([o["label"] for o in train_objs]),
                                                          class_texts)
    history = adapt_image_head(head, anchor, regions, sensors, cfg, args.run_dir or Path(f"{args.out}.run"),
                               evaluate, log)

    # 3. the adapted model ---------------------------------------------------------------------------------------
    model.config.revision = args.revision
    model.config.extra.setdefault("global_path", {}).setdefault("from", {})["image_head"] = "geovec.train.global_head"
    model.save_pretrained(args.out)
    result = {"model": args.revision, "base_model": str(args.model), "out": str(args.out),
              "command": "python benchmarks/train_global_head.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "config": asdict(cfg), "region_views": region_views, "sensor_views": sensor_views,
              "regions": None if args.no_regions else {"source": region_source, "boxes": len(train_objs),
                                                      "classes": classes, "templates": list(TEMPLATES)},
              "anchor": {"source": "RSICD train", "images": len(tr_images)},
              "dev_note": "global half alone; dev scores, optimistic where they chose settings",
              "before": before, "history": history, "seconds": round(time.perf_counter() - t_start, 1)}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1, default=float) + "\n")
    log(f"saved {model.config.name} {args.revision} to {args.out}; results {args.results}")
    return result


if __name__ == "__main__":
    from geovec.data.base import DatasetNotFoundError

    try:
        main()
    except DatasetNotFoundError as e:  # a data root without RSICD / VHR-10 / NWPU-RESISC12: one line, not a traceback
        print(f"train_global_head.py: {e}", file=sys.stderr)
        sys.exit(2)
