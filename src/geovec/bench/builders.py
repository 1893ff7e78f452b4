"""Generic task constructions (classification, retrieval, VQA, region, composed, geo) from dataset samples.

Each ``*_task`` function turns loader samples into a :class:`TaskData`; the registry binds them to datasets.
Candidate pools follow the RSMEB protocol: classification ranks all class names, retrieval the whole split,
VQA the answer vocabulary of the question's type, region and geo tasks every candidate of the split.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from geovec.bench.task_data import TaskData

CLASS_TEMPLATE = "a remote sensing image of {}."


def classification_task(samples: Sequence[dict], prompt_names: Sequence[str], template: str = CLASS_TEMPLATE,
                        box_key: str | None = None) -> TaskData:
    """image (or image + box) -> class names as text; gold = the sample's ``label``."""
    queries = [{"image": s["image"], "box": s[box_key]} if box_key else {"image": s["image"]} for s in samples]
    candidates = [{"text": template.format(n)} for n in prompt_names]
    return TaskData(queries, candidates, [[int(s["label"])] for s in samples],
                    info={"n_classes": len(prompt_names), "template": template})


def caption_retrieval_tasks(samples: Sequence[dict]) -> tuple[TaskData, TaskData]:
    """(image -> captions, caption -> images) over the whole split.

    A caption *text* is one candidate / one query: datasets repeat captions verbatim (RSICD fills its 5 slots
    with copies, and one sentence can describe several images), and copies of a string embed identically, so
    ranking them as separate candidates would decide hits by tie-breaking. Image -> text golds are the distinct
    texts of the image's captions; text -> image golds are all images that have that caption.
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
    info = {"n_images": len(images), "n_captions": n_captions, "n_distinct_captions": len(captions)}
    i2t = TaskData(images, captions, image_golds, info=dict(info))
    t2i = TaskData(captions, images, owners, info=dict(info))
    return i2t, t2i


def vqa_task(samples: Sequence[dict]) -> TaskData:
    """(image, question) -> the answers seen for its question type; ranked within the type."""
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
    return TaskData(queries, candidates, gold, query_groups=types, candidate_groups=cand_type, query_labels=types,
                    info={"answer_vocabulary": {t: cand_type.count(t) for t in sorted(set(cand_type))}})


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


def composed_patterncom_task(rows: Sequence[dict]) -> TaskData:
    """PatternCom: (image, other value of the same attribute) -> images of the same category with that value.

    Candidates are the distinct images of all csv files; for each row and each *other* value of its
    (attribute file, category, attribute) group, one query whose golds are the rows with that value.
    """
    images = list(dict.fromkeys(str(r["image"]) for r in rows))
    img_index = {p: i for i, p in enumerate(images)}
    groups: dict[tuple, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        groups[(r["attribute_file"], r["category"], r["attribute"])][r["value"]].add(img_index[str(r["image"])])
    queries, gold, labels = [], [], []
    for r in rows:
        values = groups[(r["attribute_file"], r["category"], r["attribute"])]
        for v in sorted(values):
            if v == r["value"]:
                continue
            queries.append({"image": r["image"], "text": v})
            gold.append(sorted(values[v]))
            labels.append(r["attribute_file"])
    return TaskData(queries, [{"image": p} for p in images], gold, query_labels=labels,
                    info={"n_rows": len(rows), "n_images": len(images)})


def geo_tasks(places: Sequence[dict], texts: Sequence[str]) -> tuple[TaskData, TaskData]:
    """On georeferenced images with footprint centres ``lat``/``lon``:

    * image -> location: every place's image against the locations of all places (P@1, distance errors);
    * (text, location) -> (image, location): ``texts[i]`` describes place i's imagery.
    """
    latlon = np.array([[p["lat"], p["lon"]] for p in places], dtype=np.float64)
    locs = [{"lat": float(p["lat"]), "lon": float(p["lon"])} for p in places]
    img2loc = TaskData([{"image": p["image"]} for p in places], locs, [[i] for i in range(len(places))],
                       query_latlon=latlon, candidate_latlon=latlon, info={"n_places": len(places)})
    textloc = TaskData([{"text": t, **loc} for t, loc in zip(texts, locs)],
                       [{"image": p["image"], **loc} for p, loc in zip(places, locs)],
                       [[i] for i in range(len(places))], query_latlon=latlon, candidate_latlon=latlon,
                       info={"n_places": len(places), "texts": sorted(set(texts))})
    return img2loc, textloc


def pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]
