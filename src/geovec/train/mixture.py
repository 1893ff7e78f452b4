"""The default training mixture built from ../shared/data, TRAIN split only.

* retrieval: RSICD train images <-> their captions (both directions);
* classification: RSICD train images -> class names (RSICD ``classes/`` lists), other names as negatives;
* region: mosaics of RSICD train images (box -> caption, caption -> box, box -> class);
* geo: RSVQA-LR/HR GeoTIFF scenes whose id is not divisible by 5, whole and cropped, <-> their locations.

The RSICD ``val`` carve-out and RSVQA ids divisible by 5 are never read here: they are the rsmeb-dev sets.
"""

from __future__ import annotations

import json
from pathlib import Path

from geovec.train.converters import caption_examples, class_lists, classification_examples, karpathy_captions
from geovec.train.data import write_jsonl
from geovec.train.geo import geo_crops, geo_examples, is_train_scene, read_geo_index
from geovec.train.mosaics import build_mosaics, region_examples


def rsicd_split(data_root: str | Path, split: str) -> list[tuple[str, list[str], str]]:
    """[(image path, captions, class)] of one RSICD split."""
    root = Path(data_root) / "rsicd"
    caps = dict(karpathy_captions(root / "dataset_rsicd.json", root / "RSICD_images", split))
    labels = dict(class_lists(root / "classes", root / "RSICD_images", keep={Path(p).name for p in caps}))
    return [(p, c, labels.get(p)) for p, c in caps.items()]


def build_mixture(data_root: str | Path, out_dir: str | Path, mosaics: int = 300, crops_per_scene: int = 10,
                  seed: int = 0) -> dict:
    """Write ``{retrieval,classification,region,geo}.jsonl`` (+ mosaic and crop images) under ``out_dir``;
    returns {"files": {task: path}, "images": [every image file the examples use]}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = rsicd_split(data_root, "train")
    files, images = {}, set()
    files["retrieval"] = out / "retrieval.jsonl"
    write_jsonl(caption_examples([(p, c) for p, c, _ in train]), files["retrieval"])
    files["classification"] = out / "classification.jsonl"
    write_jsonl(classification_examples([(p, l) for p, _, l in train if l]), files["classification"])
    images.update(p for p, _, _ in train)
    mos = build_mosaics(train, out / "mosaics", mosaics, seed=seed)
    files["region"] = out / "region.jsonl"
    write_jsonl(region_examples(mos), files["region"])
    images.update(m.path for m in mos)
    scenes = [r for r in read_geo_index(data_root) if is_train_scene(r)]
    places = geo_crops(scenes, out / "geo_crops", crops_per_scene, seed=seed)
    files["geo"] = out / "geo.jsonl"
    write_jsonl(geo_examples(places), files["geo"])
    images.update(p["image"] for p in places)
    manifest = {"files": {k: str(v) for k, v in files.items()}, "images": sorted(images),
                "data_root": str(data_root), "mosaics": mosaics, "crops_per_scene": crops_per_scene, "seed": seed}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
