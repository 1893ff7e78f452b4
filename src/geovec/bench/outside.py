"""The rsmeb-dev tasks that look outside RSICD: Sentinel-2 scenes, real objects in real scenes, other phrasings.

* ``dev-EuroSAT-RGB-scene``: the 1,000 EuroSAT RGB patches of ``eurosat_rgb_dev`` -> 10 class names (zero-shot);
* ``dev-EuroSAT-MS-scene``: the 131 13-band EuroSAT-MS GeoTIFFs as *files*, so the image is read by the
  Sentinel-2 path every user's GeoTIFF takes (band order from the band count, reflectance 0-0.3 as 0-255);
* ``dev-VHR10-*``: the dev part of NWPU VHR-10 (whole images, :func:`geovec.data.nwpu_vhr10.is_dev_image`):
  box -> class name, referring within the image, region <-> region across images; P@1 also per class and per
  object size (``sqrt`` of the box area: <32, 32-96, >96 px);
* ``dev-VQA-phrasing``: the derived VQA questions of RSICD val asked in phrasings and answer wordings the training
  generator never uses (:mod:`geovec.data.vqa_phrasing`), scored beside the same questions in the template
  phrasing.

:data:`OUTSIDE_RSICD` names them; reports average them into one "outside RSICD" line with a bootstrap interval.
Training never reads ``eurosat_rgb_dev`` nor the VHR-10 dev images.
"""

from __future__ import annotations

from collections import defaultdict

from geovec.bench import builders
from geovec.bench.task_data import BuildContext, MultiTaskData, TaskData
from geovec.bench.tasks import TaskSpec, register
from geovec.data import EuroSATMS, EuroSATRGB, NWPUVHR10
from geovec.data.nwpu_vhr10 import with_referring_expressions

OUTSIDE_RSICD = ("dev-EuroSAT-RGB-scene", "dev-EuroSAT-MS-scene", "dev-VHR10-box-class", "dev-VHR10-referring",
                 "dev-VHR10-region-region", "dev-VQA-phrasing")
SIZE_NOTE = "object size = sqrt(box area) in image pixels: <32, 32-96, >96 px (COCO bins)"


def eurosat_rgb_scene(ctx: BuildContext) -> TaskData:
    ds = EuroSATRGB(ctx.data_root / "eurosat_rgb_dev")
    return builders.classification_task(ds.samples, ds.prompt_names)


def eurosat_ms_scene(ctx: BuildContext) -> TaskData:
    """The GeoTIFF paths as images; P@1 also by the patch's side of the geo tasks' spatial split (``train``
    patches were in the training geo chips, with their class in the chip's text)."""
    from geovec.bench.dev import GEO_SPLIT_SEED
    from geovec.data.geo import find_scenes, spatial_split

    ds = EuroSATMS(ctx.data_root / "eurosat_ms")
    data = builders.classification_task(ds.samples, ds.prompt_names)
    split = spatial_split(find_scenes(ctx.data_root), seed=GEO_SPLIT_SEED)
    root = (ctx.data_root / "eurosat_ms").resolve()
    data.query_facets = {"geo_split": [split.get(f"eurosat_ms/{s['image'].resolve().relative_to(root).as_posix()}",
                                                 "none") for s in ds.samples]}
    data.info.update(reading="13-band uint16 GeoTIFF -> Sentinel-2 L1C band order (B4, B3, B2), DN 0-3000 as 0-255 "
                             "(geovec.inputs.raster)",
                     geo_split_note="'train' patches were in the geo training chips with the text 'a Sentinel-2 "
                                    "satellite image of <class>': only 'eval' is unseen")
    return data


def vhr10_dev(ctx: BuildContext) -> list[dict]:
    return NWPUVHR10(ctx.data_root / "nwpu_vhr10", "dev").samples


def _facets(objects: list[dict]) -> dict[str, list[str]]:
    return {"class": [o["class_name"] for o in objects], "size": [o["size_bin"] for o in objects]}


def _info(objects: list[dict], **extra) -> dict:
    return {"n_images": len({o["image_id"] for o in objects}), "n_objects": len(objects), "split": "dev part of "
            "NWPU VHR-10 image_set/train.txt: sha256(image id)[:8] / 2**32 < 0.2", "size_bins": SIZE_NOTE, **extra}


def vhr10_box_class(ctx: BuildContext) -> TaskData:
    objects = vhr10_dev(ctx)
    data = builders.classification_task(objects, NWPUVHR10.prompt_names, box_key="box")
    data.query_facets = _facets(objects)
    data.query_clusters = [o["image_id"] for o in objects]
    data.info.update(_info(objects))
    return data


def vhr10_referring(ctx: BuildContext) -> TaskData:
    """(image, "the <class>" / position phrase) -> the object among every object of its image; images with a single
    object are left out (nothing to choose), and so are objects no phrase singles out."""
    objects = vhr10_dev(ctx)
    per_image = defaultdict(int)
    for o in objects:
        per_image[o["image_id"]] += 1
    candidates = [o for o in objects if per_image[o["image_id"]] > 1]
    index = {(o["image_id"], o["object_index"]): i for i, o in enumerate(candidates)}
    queries = with_referring_expressions(candidates)
    groups = [o["image_id"] for o in queries]
    data = TaskData([{"image": o["image"], "text": o["expression"]} for o in queries],
                    [{"image": o["image"], "box": o["box"]} for o in candidates],
                    [[index[(o["image_id"], o["object_index"])]] for o in queries],
                    query_groups=groups, candidate_groups=[o["image_id"] for o in candidates],
                    query_clusters=groups, query_facets={
                        **_facets(queries),
                        "phrase": ["class name" if o["expression"] == f"the {o['class_name']}" else "position"
                                   for o in queries]},
                    info=_info(candidates, n_queries=len(queries), protocol="within the image: the query's object among "
                               "all objects of its image; class name where unique in the image, else a position phrase "
                               "(geovec.data.nwpu_vhr10.referring_expression)"))
    return data


def vhr10_region_to_region(ctx: BuildContext) -> TaskData:
    """(image, box) -> the objects of the same class in the *other* dev images (objects of its own image are not
    ranked)."""
    objects = vhr10_dev(ctx)
    by_image: dict[str, list[int]] = defaultdict(list)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(objects):
        by_image[o["image_id"]].append(i)
        by_class[o["class_name"]].append(i)
    gold = [[j for j in by_class[o["class_name"]] if objects[j]["image_id"] != o["image_id"]] for o in objects]
    keep = [i for i, g in enumerate(gold) if g]
    items = [{"image": o["image"], "box": o["box"]} for o in objects]
    kept = [objects[i] for i in keep]
    return TaskData([items[i] for i in keep], items, [gold[i] for i in keep],
                    exclude=[by_image[objects[i]["image_id"]] for i in keep],
                    query_clusters=[o["image_id"] for o in kept], query_facets=_facets(kept),
                    info=_info(objects, n_queries=len(keep), protocol="across images: gold = the same class in other "
                                                                      "dev images; the query's own image not ranked"))


def vqa_phrasing(ctx: BuildContext) -> MultiTaskData:
    """The dev VQA questions (RSICD val, :func:`geovec.data.vqa_gen.rsicd_pairs`) twice: in held-out phrasings and
    answer wordings (the main score) and in the template phrasing (``in_template``, the same pairs as
    ``dev-RSICD-vqa``); ``held_out_minus_in_template`` is the paired difference over the same questions."""
    from geovec.bench.dev import rsicd_root
    from geovec.data.vqa_gen import pairs_to_samples, rsicd_pairs
    from geovec.data.vqa_phrasing import held_out_pair

    pairs = rsicd_pairs(rsicd_root(ctx), "val", seed=ctx.seed)
    held = [held_out_pair(p, seed=ctx.seed) for p in pairs]
    parts = {"held_out": builders.vqa_task(pairs_to_samples(held), cluster_by_image=True),
             "in_template": builders.vqa_task(pairs_to_samples(pairs), cluster_by_image=True)}
    return MultiTaskData(parts, main_parts=("held_out",),
                         info={"paired_parts": ("in_template", "held_out"), "n_questions": len(pairs),
                               "n_images": len({p.image for p in pairs}), "seed": ctx.seed,
                               "held_out": "phrasings of geovec.data.vqa_phrasing.HELD_OUT_QUESTIONS (disjoint from "
                                           "every training phrasing); count answers as number words (0-20)"})


_VHR = "NWPU VHR-10 (dev part)"
for spec in (
    TaskSpec("dev-EuroSAT-RGB-scene", "rsmeb-dev", "classification", "EuroSAT-RGB", "all (zero-shot)", ("image",),
             ("text",), "p@1", eurosat_rgb_scene,
             "EuroSAT RGB (shared/data/eurosat_rgb_dev: Sentinel-2 true colour, 64 px, 10 classes x 100) image -> 10 "
             "class names; never trained on", candidate_task="classification",
             reference="EuroSAT zero-shot top-1 (RS-TransCLIP prompts): CLIP B/32 about 45-50",
             reference_note="a 1,000-patch slice, single template"),
    TaskSpec("dev-EuroSAT-MS-scene", "rsmeb-dev", "classification", "EuroSAT-MS", "all", ("image",), ("text",), "p@1",
             eurosat_ms_scene,
             "EuroSAT-MS (shared/data/eurosat_ms: 131 13-band Sentinel-2 L1C GeoTIFFs) read through the Sentinel-2 "
             "path (band order, scaling) -> 10 class names; p@1_by_geo_split: 'eval' patches are unseen, 'train' "
             "ones were geo training chips", candidate_task="classification"),
    TaskSpec("dev-VHR10-box-class", "rsmeb-dev", "region", _VHR, "dev", ("image", "box"), ("text",), "p@1",
             vhr10_box_class, "(VHR-10 dev image, object box) -> 10 object class names; per class and object size",
             candidate_task="classification"),
    TaskSpec("dev-VHR10-referring", "rsmeb-dev", "region", _VHR, "dev", ("image", "text"), ("image", "box"), "p@1",
             vhr10_referring, "(VHR-10 dev image, 'the <class>' or a position phrase such as 'the leftmost storage "
             "tank') -> the object among the objects of that image", candidate_task="region", query_task="referring"),
    TaskSpec("dev-VHR10-region-region", "rsmeb-dev", "region", _VHR, "dev", ("image", "box"), ("image", "box"), "p@1",
             vhr10_region_to_region, "(VHR-10 dev image, box) -> objects of the same class in the other dev images"),
    TaskSpec("dev-VQA-phrasing", "rsmeb-dev", "vqa", "RSICD val, held-out phrasings", "val", ("image", "text"),
             ("text",), "p@1", vqa_phrasing,
             "dev-RSICD-vqa's questions in phrasings and answer wordings the training generator never uses (e.g. "
             "'Does this picture contain any planes?', counts answered 'three'), ranked within the type's answers; "
             "in_template = the same questions as generated; held_out_minus_in_template = paired difference",
             candidate_task="vqa", reference_note="derived questions, not RSVQA's"),
):
    register(spec)
