"""The default training mixture built from ../shared/data, TRAIN split only, read by :mod:`geovec.data`.

* retrieval: RSICD train images <-> their captions (both directions), ``RSICD(root, "train")``;
* classification: RSICD train images -> class names, other names as negatives, ``RSICDScenes(root, "train")``;
* region: mosaics of RSICD train images (:mod:`geovec.data.mosaic`; box -> caption, caption -> box, box -> class);
* geo: RSVQA-LR/HR GeoTIFF scenes whose id is not divisible by 5, whole and cropped, <-> their locations.

The RSICD ``val`` carve-out and RSVQA ids divisible by 5 are never read here: they are the rsmeb-dev sets.
"""

from __future__ import annotations

import json
from pathlib import Path

from geovec.data import RSICD, RSICDScenes
from geovec.train.converters import caption_examples, classification_examples
from geovec.train.data import write_jsonl
from geovec.train.geo import geo_crops, geo_examples, is_train_scene, read_geo_index
from geovec.train.mosaics import region_examples, train_mosaics


def rsicd_split(data_root: str | Path, split: str) -> list[tuple[str, list[str], str]]:
    """[(image path, captions, class)] of one RSICD split (``RSICDScenes(data_root / "rsicd", split)``)."""
    return [(str(Path(s["image"]).absolute()), list(s["captions"]), s["class_name"])
            for s in RSICDScenes(Path(data_root) / "rsicd", split).samples]


def build_mixture(data_root: str | Path, out_dir: str | Path, mosaics: int = 300, crops_per_scene: int = 10,
                  seed: int = 0) -> dict:
    """Write ``{retrieval,classification,region,geo}.jsonl`` (+ mosaic and crop images) under ``out_dir``;
    returns {"files": {task: path}, "images": [every image file the examples use]}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rsicd = Path(data_root) / "rsicd"
    captions = RSICD(rsicd, "train").samples
    scenes = RSICDScenes(rsicd, "train").samples
    files, images = {}, set()
    files["retrieval"] = out / "retrieval.jsonl"
    write_jsonl(caption_examples(captions), files["retrieval"])
    files["classification"] = out / "classification.jsonl"
    write_jsonl(classification_examples(scenes), files["classification"])
    images.update(str(Path(s["image"]).absolute()) for s in captions)
    mos, paths = train_mosaics(scenes, out / "mosaics", mosaics, seed=seed)
    files["region"] = out / "region.jsonl"
    write_jsonl(region_examples(mos, paths), files["region"])
    images.update(paths)
    scenes_geo = [r for r in read_geo_index(data_root) if is_train_scene(r)]
    places = geo_crops(scenes_geo, out / "geo_crops", crops_per_scene, seed=seed)
    files["geo"] = out / "geo.jsonl"
    write_jsonl(geo_examples(places), files["geo"])
    images.update(p["image"] for p in places)
    manifest = {"files": {k: str(v) for k, v in files.items()}, "images": sorted(images),
                "data_root": str(data_root), "mosaics": mosaics, "crops_per_scene": crops_per_scene, "seed": seed}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
