"""Generic task constructions (classification, retrieval, VQA, region, composed, geo) from dataset samples.

Each ``*_task`` function turns loader samples into a :class:`TaskData`; the registry binds them to datasets.
Candidate pools follow the RSMEB protocol: classification ranks all class names, retrieval the whole split,
VQA the answer vocabulary of the question's type, region and geo tasks every candidate of the split.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from geovec.bench.task_data import MultiTaskData, TaskData

CLASS_TEMPLATE = "a remote sensing image of {}."


def _rs_transclip_templates() -> tuple[str, ...]:
    """The 106 prompts RS-TransCLIP averages for its zero-shot numbers (github.com/elkhouryk/RS-TransCLIP,
    ``run_featuregeneration.py --text_prompts``; prompt = ``f"{prompt} {class name}."``)."""
    out = []
    for kind in ("remote sensing image", "aerial image", "satellite image"):
        a = "an" if kind[0] in "aeiou" else "a"
        out += [f"{a} {kind} of many {{}}.", f"{a} {kind} of a {{}}.", f"{a} {kind} of the {{}}.",
                f"{a} {kind} of the hard to see {{}}.", f"{a} {kind} of a hard to see {{}}."]
        for adj in ("low resolution", "bad", "cropped", "bright", "dark", "close-up", "black and white",
                    "jpeg corrupted", "blurry", "good"):
            out += [f"a {adj} {kind} of the {{}}.", f"a {adj} {kind} of a {{}}."]
        for size in ("large", "nice", "small", "weird", "cool"):
            out += [f"{a} {kind} of the {size} {{}}.", f"{a} {kind} of a {size} {{}}."]
    return ("a satellite photo of a {}.", *out)


#: prompt-ensemble extra for classification: average the class embeddings over these templates
ENSEMBLE_TEMPLATES = _rs_transclip_templates()


def classification_task(samples: Sequence[dict], prompt_names: Sequence[str], template: str = CLASS_TEMPLATE,
                        box_key: str | None = None) -> TaskData:
    """image (or image + box) -> class names as text; gold = the sample's ``label``.

    Main score: one template (``template``, default "a remote sensing image of {}."). ``info["templates"]``
    lists the prompts of the prompt-ensemble extra (RS-TransCLIP's average of 106 prompts) and
    ``info["class_names"]`` the names they are filled with.
    """
    queries = [{"image": s["image"], "box": s[box_key]} if box_key else {"image": s["image"]} for s in samples]
    candidates = [{"text": template.format(n)} for n in prompt_names]
    return TaskData(queries, candidates, [[int(s["label"])] for s in samples],
                    info={"protocol": f"zero-shot: rank every class name as the text '{template}' (RS-TransCLIP "
                                      "single-template protocol); readable names from geovec.data.classnames",
                          "n_classes": len(prompt_names), "template": template, "class_names": list(prompt_names),
                          "templates": list(ENSEMBLE_TEMPLATES),
                          "templates_note": "prompt-ensemble extra (RS-TransCLIP's 106 prompts): a class's "
                                            "candidate = mean of its normalised template embeddings"})


RETRIEVAL_PROTOCOL = "RemoteCLIP/GeoRSCLIP (AMFMN lineage): every caption slot is a query and a candidate"


def caption_retrieval_task(samples: Sequence[dict]) -> MultiTaskData:
    """Image-text retrieval over the whole split, the published protocol (RemoteCLIP, GeoRSCLIP, AMFMN code).

    Every caption *slot* (``caption_slots``: 5 per image in RSICD, verbatim duplicates included) is its own
    candidate for image -> text (golds: the image's slots) and its own query for text -> image (gold: its one
    image). Main score: mR = mean of R@1/5/10 of both directions (``hit@k``: any gold in the top k), one figure per
    dataset. Extras: the same on distinct caption strings (``*_distinct`` parts, see
    :func:`distinct_caption_retrieval_tasks`).
    """
    samples = [s for s in samples if s.get("caption_slots", s.get("captions"))]
    images = [{"image": s["image"]} for s in samples]
    slots, owner, image_golds = [], [], []
    for i, s in enumerate(samples):
        golds = []
        for c in s.get("caption_slots", s["captions"]):
            golds.append(len(slots))
            slots.append({"text": c if c.strip() else "."})
            owner.append(i)
        image_golds.append(golds)
    n_distinct = len({c["text"] for c in slots})
    info = {"protocol": RETRIEVAL_PROTOCOL, "n_images": len(images), "n_caption_slots": len(slots),
            "n_distinct_captions": n_distinct}
    i2t = TaskData(images, slots, image_golds, info=dict(info))
    t2i = TaskData(slots, images, [[i] for i in owner], query_clusters=owner, info=dict(info))
    d_i2t, d_t2i = distinct_caption_retrieval_tasks(samples)
    return MultiTaskData({"i2t": i2t, "t2i": t2i, "i2t_distinct": d_i2t, "t2i_distinct": d_t2i},
                         main_parts=("i2t", "t2i"), info=info)


def distinct_caption_retrieval_tasks(samples: Sequence[dict]) -> tuple[TaskData, TaskData]:
    """(image -> captions, caption -> images) over distinct caption *strings* (not the published protocol).

    A caption text is one candidate / one query: image -> text golds are the distinct texts of the image's
    captions; text -> image golds are all images that have that caption. Empty captions are dropped.
    """
    samples = [s for s in samples if s["captions"]]
    images = [{"image": s["image"]} for s in samples]
    text_index: dict[str, int] = {}
    owners: list[list[int]] = []
    image_golds: list[list[int]] = []
    n_captions = 0
    for i, s in enumerate(samples):
        golds = []
        for c in s["captions"]:
            n_captions += 1
            j = text_index.setdefault(c, len(text_index))
            if j == len(owners):
                owners.append([])
            if i not in owners[j]:
                owners[j].append(i)
            if j not in golds:
                golds.append(j)
        image_golds.append(sorted(golds))
    captions = [{"text": t} for t in text_index]
    info = {"protocol": "distinct caption strings (geovec extra)", "n_images": len(images),
            "n_captions": n_captions, "n_distinct_captions": len(captions)}
    i2t = TaskData(images, captions, image_golds, info=dict(info))
    t2i = TaskData(captions, images, owners, info=dict(info))
    return i2t, t2i


def majority_baseline(samples: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Per question type: the most common answer, its share (the P@1 of always giving it) and n."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        by_type[s["type"]].append(s["answer"])
    out = {}
    for t in sorted(by_type):
        answers = by_type[t]
        best = max(sorted(set(answers)), key=answers.count)
        out[t] = {"answer": best, "p@1": answers.count(best) / len(answers), "n": len(answers)}
    return out


def vqa_task(samples: Sequence[dict], cluster_by_image: bool = False) -> TaskData:
    """(image, question) -> the answers seen for its question type; ranked within the type.

    ``samples``: RSVQA loader samples, whose ``answer`` is already normalised as the official code does.
    ``query_labels`` = question type, so the runner's ``p@1_by_label`` is the per-type accuracy. RSVQA reports
    the overall accuracy (OA, mean over all questions: the main ``p@1``) and the average accuracy (AA, mean of
    the per-type accuracies); ``info["vqa_overall"]`` / ``info["vqa_average"]`` name the two aggregations.
    ``info["majority_baseline"]``: per type, the P@1 of always giving its most common answer
    (:func:`majority_baseline`). ``cluster_by_image``: the questions of one image are one bootstrap cluster.
    """
    vocab: dict[tuple[str, str], int] = {}
    candidates, cand_type = [], []
    for s in sorted(samples, key=lambda s: (s["type"], s["answer"])):
        key = (s["type"], s["answer"])
        if key not in vocab:
            vocab[key] = len(candidates)
            candidates.append({"text": s["answer"]})
            cand_type.append(s["type"])
    queries = [{"image": s["image"], "text": s["question"]} for s in samples]
    gold = [[vocab[(s["type"], s["answer"])]] for s in samples]
    types = [s["type"] for s in samples]
    info = {"answer_vocabulary": {t: cand_type.count(t) for t in sorted(set(cand_type))},
            "question_types": {t: types.count(t) for t in sorted(set(types))},
            "answer_normalisation": "official RSVQA VocabEncoder (geovec.data.rsvqa.normalize_answer)",
            # RSVQA reports both (computeStats.py): OA = the main p@1; AA = mean of p@1_by_label
            "vqa_overall": "mean over questions",
            "vqa_average": "mean over query_labels",
            "majority_baseline": majority_baseline(samples)}
    clusters = [str(s["image_id"]) for s in samples] if cluster_by_image else None
    return TaskData(queries, candidates, gold, query_groups=types, candidate_groups=cand_type, query_labels=types,
                    query_clusters=clusters, info=info)


def region_caption_task(regions: Sequence[dict], caption_pool: Sequence[str] | None = None,
                        gold_captions: Sequence[Sequence[str]] | None = None) -> TaskData:
    """(image, box) -> region captions. By default each region's ``expression`` is its one gold among all
    expressions; with ``caption_pool`` the candidates are that pool and ``gold_captions[i]`` the region's golds."""
    queries = [{"image": r["image"], "box": r["box"]} for r in regions]
    if caption_pool is None:
        pool = [r["expression"] for r in regions]
        candidates = [{"text": t} for t in dict.fromkeys(pool)]
        index = {t: j for j, t in enumerate(dict.fromkeys(pool))}
        gold = [[index[r["expression"]]] for r in regions]
    else:
        uniq = list(dict.fromkeys(caption_pool))
        index = {t: j for j, t in enumerate(uniq)}
        candidates = [{"text": t} for t in uniq]
        gold = [sorted({index[c] for c in g}) for g in gold_captions]
    return TaskData(queries, candidates, gold, info={"n_regions": len(regions), "n_candidates": len(candidates)})


def referring_expression_task(regions: Sequence[dict], image_key: str = "image_id") -> TaskData:
    """(image, expression) -> the right region (image + box) among all regions of the split; also reported
    within the query's own image (``within_groups``)."""
    queries = [{"image": r["image"], "text": r["expression"]} for r in regions]
    candidates = [{"image": r["image"], "box": r["box"]} for r in regions]
    groups = [r[image_key] for r in regions]
    return TaskData(queries, candidates, [[i] for i in range(len(regions))], within_groups=(groups, groups),
                    info={"n_regions": len(regions), "n_images": len(set(groups))})


def region_to_region_task(regions: Sequence[dict]) -> TaskData | None:
    """(image, box) -> other regions of the same class (the query itself excluded)."""
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(regions):
        by_class[r["class_name"]].append(i)
    keep = [i for i, r in enumerate(regions) if len(by_class[r["class_name"]]) > 1]
    items = [{"image": r["image"], "box": r["box"]} for r in regions]
    gold = [[j for j in by_class[regions[i]["class_name"]] if j != i] for i in keep]
    return TaskData([items[i] for i in keep], items, gold, exclude=keep,
                    info={"n_regions": len(regions), "n_queries": len(keep)})


PATTERNCOM_PROTOCOL = ("rscir (Psomas et al. 2024): candidates = every PatternNet image; positives = images of the same "
                       "attribute csv with the asked value and the query's class (rscir class merges); mAP per "
                       "attribute, main score = mean of the six per-attribute mAPs")


def composed_patterncom_task(rows: Sequence[dict], pool: Sequence[Any]) -> TaskData:
    """PatternCom, the rscir protocol (see :mod:`geovec.data.patterncom`): (image, another value of its
    attribute) -> PatternNet images.

    ``rows``: :class:`~geovec.data.PatternCom` samples (one per csv row); ``pool``: every PatternNet image (the
    candidates). Per attribute csv, each row gives one query per *other* value of its group
    (:func:`~geovec.data.patterncom.group_key`); its positives are the pool images whose (last) row in that csv
    has the asked value and whose class maps to the query's (:func:`~geovec.data.patterncom.relevance_class`).
    ``query_labels`` = attribute; the main score is the mean over attributes of the per-attribute mAP
    (``info["main_score_aggregation"]``). rscir counts a (query, value) without any positive as AP 0; that only
    happens when a file is listed twice in one csv with different values, and such queries are left out here
    (counted in ``info["n_queries_without_positives"]``).
    """
    from geovec.data.patterncom import group_key, relevance_class

    pool = list(dict.fromkeys(str(p) for p in pool))
    by_basename: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pool):
        by_basename[os.path.basename(p)].append(i)
    queries, gold, labels = [], [], []
    n_empty: dict[str, int] = defaultdict(int)
    per_attr: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        per_attr[r["attribute_file"]].append(r)
    for attr, attr_rows in per_attr.items():
        last = {r["filename"]: r for r in attr_rows}  # rscir filename_to_index_map: the last row wins
        positives: dict[tuple[str, str], list[int]] = defaultdict(list)
        for fn, r in last.items():
            positives[(relevance_class(r["category"]), r["value"])].extend(by_basename.get(fn, []))
        values: dict[str, set[str]] = defaultdict(set)
        for r in attr_rows:
            values[group_key(attr, r["attribute"], r["category"])].add(r["value"])
        for r in attr_rows:
            for v in sorted(values[group_key(attr, r["attribute"], r["category"])] - {r["value"]}):
                g = sorted(set(positives.get((relevance_class(r["category"]), v), [])))
                if not g:
                    n_empty[attr] += 1
                    continue
                queries.append({"image": r["image"], "text": v.strip()})
                gold.append(g)
                labels.append(attr)
    info = {"protocol": PATTERNCOM_PROTOCOL, "main_score_aggregation": "mean over query_labels",
            "n_rows": len(rows), "n_candidates": len(pool),
            "n_queries_per_attribute": {a: labels.count(a) for a in sorted(set(labels))},
            "n_queries_without_positives": dict(n_empty)}
    return TaskData(queries, [{"image": p} for p in pool], gold, query_labels=labels, info=info)


GEO_PROTOCOL = ("spatially held-out scenes (geovec.data.geo.spatial_split: 10 km blocks, a third held out, no training "
                "scene within 2 km); P@1 plus accuracy within 1/25/200/750/2500 km of the top-1 place (im2gps, GeoCLIP)")


def geo_tasks(places: Sequence[dict]) -> tuple[TaskData, TaskData]:
    """On chips of held-out georeferenced scenes (:func:`geovec.data.geo.geo_places`):

    * image -> location: each chip against the centres of all held-out scenes (gold: its own scene); distance
      errors are measured from the chip's own centre to the top-1 place;
    * (text, location) -> image: the chip's description and centre against every held-out chip *image* (no
      location on the candidate side); golds = the chips of the same scene.

    Chips of one scene are correlated, so they form one bootstrap cluster.
    """
    scenes = list(dict.fromkeys(p["scene"] for p in places))
    index = {sc: i for i, sc in enumerate(scenes)}
    first = {}
    for p in places:
        first.setdefault(p["scene"], p)
    scene_latlon = np.array([[first[sc]["scene_lat"], first[sc]["scene_lon"]] for sc in scenes], dtype=np.float64)
    chip_latlon = np.array([[p["lat"], p["lon"]] for p in places], dtype=np.float64)
    clusters = [p["scene"] for p in places]
    locs = [{"lat": float(a), "lon": float(b)} for a, b in scene_latlon]
    info = {"protocol": GEO_PROTOCOL, "n_chips": len(places), "n_scenes": len(scenes),
            "datasets": {d: sum(p["dataset"] == d for p in places) for d in sorted({p["dataset"] for p in places})}}
    img2loc = TaskData([{"image": p["image"]} for p in places], locs, [[index[p["scene"]]] for p in places],
                       query_latlon=chip_latlon, candidate_latlon=scene_latlon, query_clusters=clusters,
                       query_labels=[p["dataset"] for p in places], info=dict(info))
    members: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(places):
        members[p["scene"]].append(i)
    textloc = TaskData([{"text": p["text"], "lat": float(p["lat"]), "lon": float(p["lon"])} for p in places],
                       [{"image": p["image"]} for p in places], [members[p["scene"]] for p in places],
                       query_latlon=chip_latlon, candidate_latlon=chip_latlon, query_clusters=clusters,
                       query_labels=[p["dataset"] for p in places],
                       info=dict(info, texts=sorted({p["text"] for p in places})))
    return img2loc, textloc


def pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]
