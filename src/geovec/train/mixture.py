"""The default training mixture built from ../shared/data, TRAIN split only, read by :mod:`geovec.data`.

* retrieval: RSICD train images <-> their captions (both directions), ``RSICD(root, "train")``;
* classification: RSICD train images -> class names, other names as negatives, ``RSICDScenes(root, "train")``;
* region: mosaics of RSICD train images (:mod:`geovec.data.mosaic`; box -> caption, caption -> box, box -> class);
* geo: chips of the georeferenced scenes of the spatial ``train`` split (:func:`geovec.data.geo.geo_places`)
  <-> their locations;
* composed: edits of mosaics of RSICD train images (:func:`geovec.train.mosaics.composed_examples`, the edit
  builder of the ``dev-mosaic-composed`` task), (base + "an added <class> region") -> the edited mosaic;
* vqa: derived question/answer pairs of RSICD train (:func:`geovec.train.converters.caption_vqa_examples`, the
  generator of the ``dev-RSICD-vqa`` task), (image + question) -> answer, the type's other answers as negatives.

The RSICD ``val`` carve-out and the held-out geo scenes are never read here: they are the rsmeb-dev sets.
"""

from __future__ import annotations

import json
from pathlib import Path

from geovec.data import RSICD, RSICDScenes
from geovec.train.converters import caption_examples, caption_vqa_examples, classification_examples
from geovec.train.data import write_jsonl
from geovec.train.geo import GEO_SPLIT_SEED, geo_examples, train_places
from geovec.train.mosaics import composed_examples, region_examples, train_mosaics


def rsicd_split(data_root: str | Path, split: str) -> list[tuple[str, list[str], str]]:
    """[(image path, captions, class)] of one RSICD split (``RSICDScenes(data_root / "rsicd", split)``)."""
    return [(str(Path(s["image"]).absolute()), list(s["captions"]), s["class_name"])
            for s in RSICDScenes(Path(data_root) / "rsicd", split).samples]


def build_mixture(data_root: str | Path, out_dir: str | Path, mosaics: int = 300, seed: int = 0,
                  geo_split_seed: int = GEO_SPLIT_SEED, composed: int = 300) -> dict:
    """Write ``{retrieval,classification,region,composed,geo,vqa}.jsonl`` (+ mosaic and geo chip images) under ``out_dir``;
    returns {"files": {task: path}, "images": [every image file the examples use]}. ``seed``: the mosaics';
    ``composed``: the number of base mosaics edited for composed pairs (3 edits each);
    ``geo_split_seed``: the spatial split's (keep the benchmark's, or training chips may lie in its held-out
    blocks)."""
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
    files["vqa"] = out / "vqa.jsonl"
    write_jsonl(caption_vqa_examples(scenes, type_negatives=True), files["vqa"])
    mos, paths = train_mosaics(scenes, out / "mosaics", mosaics, seed=seed)
    files["region"] = out / "region.jsonl"
    write_jsonl(region_examples(mos, paths), files["region"])
    images.update(paths)
    files["composed"] = out / "composed.jsonl"
    comp, comp_paths = composed_examples(scenes, out / "composed", composed, seed=seed)
    write_jsonl(comp, files["composed"])
    images.update(comp_paths)
    places = train_places(data_root, out / "geo", seed=geo_split_seed)
    files["geo"] = out / "geo.jsonl"
    write_jsonl(geo_examples(places), files["geo"])
    images.update(str(Path(p["image"]).absolute()) for p in places)
    manifest = {"files": {k: str(v) for k, v in files.items()}, "images": sorted(images),
                "data_root": str(data_root), "mosaics": mosaics, "composed": composed, "seed": seed, "geo_split_seed": geo_split_seed,
                "geo_places": len(places), "geo_scenes": len({p["scene"] for p in places})}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def build_outside_sources(data_root: str | Path, out_dir: str | Path, sensor_images: int = 2000, sensor_views: int = 1,
                          seed: int = 0) -> dict:
    """The extra sources aimed at imagery outside RSICD, under ``out_dir`` (TRAIN splits only):

    * ``vqa_paraphrased.jsonl``: the derived VQA pairs of RSICD train in the template phrasings and
      :data:`geovec.data.vqa_gen.PARAPHRASES` (counts in digits or words);
    * ``sensor.jsonl``: ``sensor_views`` sensor-simulated views (:mod:`geovec.train.sensor_sim`, GSD 0.5-30 m) of a
      seeded sample of ``sensor_images`` RSICD train images (rendered under ``sensor/``) -> class names and captions;
    * ``vhr10.jsonl``: the NWPU VHR-10 objects of the train part (:func:`geovec.train.converters.vhr10_examples`).
    Returns {"files": {name: path}, "images": [every image the examples use], ...counts}."""
    import numpy as np

    from geovec.data import NWPUVHR10
    from geovec.train.converters import sensor_view_examples, vhr10_examples
    from geovec.train.sensor_sim import render_views

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scenes = RSICDScenes(Path(data_root) / "rsicd", "train").samples
    files, images = {}, set()
    files["vqa_paraphrased"] = out / "vqa_paraphrased.jsonl"
    write_jsonl(caption_vqa_examples(scenes, type_negatives=True, paraphrase=True, seed=seed), files["vqa_paraphrased"])
    pick = sorted(np.random.default_rng(seed).choice(len(scenes), min(sensor_images, len(scenes)), replace=False))
    chosen = [scenes[i] for i in pick]
    views = render_views([s["image"] for s in chosen], out / "sensor", views=sensor_views, seed=seed)
    files["sensor"] = out / "sensor.jsonl"
    write_jsonl(sensor_view_examples(views, chosen), files["sensor"])
    images.update(v["image"] for v in views)
    vhr = NWPUVHR10(Path(data_root) / "nwpu_vhr10", "train").samples
    files["vhr10"] = out / "vhr10.jsonl"
    write_jsonl(vhr10_examples(vhr), files["vhr10"])
    images.update(str(Path(s["image"]).absolute()) for s in vhr)
    manifest = {"files": {k: str(v) for k, v in files.items()}, "images": sorted(images), "sensor_images": len(chosen),
                "sensor_views": sensor_views, "vhr10_objects": len(vhr), "seed": seed}
    (out / "outside_manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
