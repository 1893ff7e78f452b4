"""The ``rsmeb-dev`` tasks: built deterministically from the real data in ``shared/data``, ``val`` split only.

* RSICD image <-> text retrieval and scene classification on the 491 RSICD ``val`` images;
* region tasks on mosaics of RSICD ``val`` images (:mod:`geovec.data.mosaic`), rendered once and cached;
* composed retrieval as mosaic edits: (mosaic, "the same scene with an added <class> region") -> the edited
  mosaic, among edits of every mosaic with other classes;
* geo tasks on chips of the georeferenced scenes (RSVQA LR/HR, EuroSAT-MS, SatCLIP S2) held out by
  :func:`geovec.data.geo.spatial_split` (whole 10 km blocks, no training scene beside them), with each chip's
  real centre.

Nothing here touches RSICD ``train`` images, so a model trained on ``train`` is evaluated on unseen images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from geovec.bench import builders
from geovec.data import RSICD, RSICDScenes
from geovec.data.geo import geo_places
from geovec.data.mosaic import COMPOSED_TEMPLATE, Mosaic, build_mosaics, composed_edits, mosaics_fingerprint
from geovec.bench.task_data import BuildContext, MultiTaskData, TaskData

# mosaic settings of the dev suite (changing them changes the tasks: the cache key includes them)
MOSAIC = dict(canvas_size=448, regions_per_mosaic=(3, 5), side_range=(96, 208))
N_REGION_MOSAICS = 100  # ~400 regions: a 95% half-width of about 5 points at P@1 around 50
N_COMPOSED_MOSAICS = 100  # x 3 edits = 300 queries
COMPOSED_VARIANTS = 3



def rsicd_root(ctx: BuildContext) -> Path:
    return ctx.data_root / "rsicd"


def _scenes(ctx: BuildContext) -> RSICDScenes:
    return RSICDScenes(rsicd_root(ctx), "val")


def rsicd_retrieval(ctx: BuildContext) -> MultiTaskData:
    return builders.caption_retrieval_task(RSICD(rsicd_root(ctx), "val").samples)


def rsicd_scenes(ctx: BuildContext) -> TaskData:
    ds = _scenes(ctx)
    return builders.classification_task(ds.samples, ds.prompt_names)


def rsicd_vqa(ctx: BuildContext) -> TaskData:
    """Derived VQA on RSICD val (:mod:`geovec.data.vqa_gen`: presence, count, comparison, rural/urban and
    scene-type questions from the captions and class, the "no" rule measured on the train captions); answers
    normalised as RSVQA-HR (counts stay numbers), ranked within the question type's answers; the questions of
    one image are one bootstrap cluster."""
    from geovec.data.vqa_gen import pairs_to_samples, rsicd_pairs

    samples = pairs_to_samples(rsicd_pairs(rsicd_root(ctx), "val", seed=ctx.seed))
    data = builders.vqa_task(samples, cluster_by_image=True)
    data.info.update(seed=ctx.seed, n_images=len({s["image_id"] for s in samples}),
                     answer_normalisation="RSVQA-HR (geovec.data.rsvqa.normalize_answer, dataset='HR'): counts "
                                          "stay numbers; LR's bins would put nearly every stated count in one bin",
                     questions="derived from RSICD captions and classes by geovec.data.vqa_gen (not RSVQA)")
    return data


# --- mosaics ------------------------------------------------------------------------------------------------
def _render_cached(mosaics: list[Mosaic], ctx: BuildContext, name: str) -> list[Path]:
    """Render each mosaic once to PNG under the cache dir; the folder is keyed by the mosaics' fingerprint."""
    folder = ctx.cache_dir / "tasks" / f"{name}-{mosaics_fingerprint(mosaics)}"
    manifest = folder / "mosaics.json"
    paths = [folder / f"{m.id}.png" for m in mosaics]
    if manifest.exists() and all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for m, p in zip(mosaics, paths):
        if not p.exists():
            tmp = p.with_suffix(".tmp.png")
            m.save(tmp)
            tmp.replace(p)
    manifest.write_text(json.dumps([m.to_dict() for m in mosaics], indent=1))
    return paths


def region_mosaics(ctx: BuildContext) -> tuple[list[Mosaic], list[Path]]:
    mosaics = build_mosaics(_scenes(ctx).samples, N_REGION_MOSAICS, seed=ctx.seed, id_prefix="rsicd-val", **MOSAIC)
    return mosaics, _render_cached(mosaics, ctx, "region-mosaics")


def _regions(ctx: BuildContext) -> list[dict[str, Any]]:
    """Every placed region as a sample dict: mosaic path, box, captions, class, mosaic id, and a referring
    expression = one of the source image's captions chosen with the seed."""
    mosaics, paths = region_mosaics(ctx)
    rng = np.random.default_rng(ctx.seed + 1)
    out = []
    for m, p in zip(mosaics, paths):
        for r in m.regions:
            out.append({"image": p, "box": list(r.box), "captions": r.captions, "class_name": r.class_name,
                        "expression": builders.pick(rng, r.captions), "image_id": m.id, "source": r.source})
    return out


def mosaic_region_caption(ctx: BuildContext) -> TaskData:
    """(mosaic, box) -> captions, ranked among all RSICD val captions (the same pool as image -> text)."""
    regions = _regions(ctx)
    pool = [c for s in RSICD(rsicd_root(ctx), "val").samples for c in s["captions"]]
    data = builders.region_caption_task(regions, caption_pool=pool, gold_captions=[r["captions"] for r in regions])
    data.within_groups = None
    data.info.update(n_mosaics=N_REGION_MOSAICS, mosaic=MOSAIC, seed=ctx.seed)
    return data


def mosaic_referring_expression(ctx: BuildContext) -> TaskData:
    """(mosaic, expression) -> the right region among all regions; also within its own mosaic."""
    data = builders.referring_expression_task(_regions(ctx))
    data.info.update(n_mosaics=N_REGION_MOSAICS, mosaic=MOSAIC, seed=ctx.seed)
    return data


def mosaic_box_class(ctx: BuildContext) -> TaskData:
    """(mosaic, box) -> the placed image's class among the 31 RSICD class names."""
    names = _scenes(ctx).class_names
    prompts = _scenes(ctx).prompt_names
    regions = [{**r, "label": names.index(r["class_name"])} for r in _regions(ctx)]
    data = builders.classification_task(regions, prompts, box_key="box")
    data.info.update(n_mosaics=N_REGION_MOSAICS, mosaic=MOSAIC, seed=ctx.seed)
    return data


def mosaic_region_to_region(ctx: BuildContext) -> TaskData:
    """(mosaic, box) -> the regions of the same class in the other mosaics (classes are distinct within a mosaic)."""
    data = builders.region_to_region_task(_regions(ctx))
    data.info.update(n_mosaics=N_REGION_MOSAICS, mosaic=MOSAIC, seed=ctx.seed)
    return data


def mosaic_composed(ctx: BuildContext) -> TaskData:
    """(mosaic, "the same scene with an added <class> region") -> that edited mosaic.

    Base mosaics (2-4 regions, one free slot) come from RSICD val images; each gets ``COMPOSED_VARIANTS`` edits
    placing an unused val image of a class absent from the mosaic in the free slot. Candidates are all edits
    of all mosaics, so the model must keep the scene (other mosaics' edits) and apply the change (the same
    mosaic's other edits are hard negatives).
    """
    samples = _scenes(ctx).samples
    bases = build_mosaics(samples, N_COMPOSED_MOSAICS, seed=ctx.seed + 7, free_slots=1, id_prefix="rsicd-val-edit",
                          canvas_size=MOSAIC["canvas_size"], regions_per_mosaic=(2, 4), side_range=MOSAIC["side_range"])
    edits, queries_meta = composed_edits(bases, samples, COMPOSED_VARIANTS, np.random.default_rng(ctx.seed + 8))
    base_paths = _render_cached(bases, ctx, "composed-bases")
    edit_paths = _render_cached(edits, ctx, "composed-edits")
    queries = [{"image": base_paths[b], "text": COMPOSED_TEMPLATE.format(name=name)}
               for b, name in queries_meta]
    groups = [b for b, _ in queries_meta]
    return TaskData(queries, [{"image": p} for p in edit_paths], [[i] for i in range(len(edits))],
                    within_groups=(groups, groups),
                    info={"n_base_mosaics": len(bases), "n_edits": len(edits), "variants": COMPOSED_VARIANTS,
                          "seed": ctx.seed})


# --- geo ----------------------------------------------------------------------------------------------------
GEO_SPLIT_SEED = 0
def _geo(ctx: BuildContext) -> tuple[TaskData, TaskData]:
    # the split seed is fixed (not ctx.seed): training excludes exactly these held-out scenes
    return builders.geo_tasks(geo_places(ctx.data_root, "eval", cache_dir=ctx.cache_dir, seed=GEO_SPLIT_SEED))


def geo_image_to_location(ctx: BuildContext) -> TaskData:
    return _geo(ctx)[0]


def geo_text_location_to_image(ctx: BuildContext) -> TaskData:
    return _geo(ctx)[1]
