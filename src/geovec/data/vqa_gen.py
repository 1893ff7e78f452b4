"""RSVQA-style question/answer pairs derived from image captions, by fixed rules (no model involved): presence,
count, comparison, rural/urban and scene questions, from each image's captions and, where known, its scene class.
The questions are *derived*, not RSVQA's nor part of any caption dataset's release; the rules and their measured
error rate are in ``docs/benchmark.md`` ("Derived VQA"). The vocabulary is :mod:`geovec.data.vqa_vocabulary`,
the caption rules :mod:`geovec.data.vqa_facts`, the phrasings :mod:`geovec.data.vqa_questions`.

:func:`generate_pairs` works on any caption set (``[{"image", "captions", "class_name"?}]``, e.g.
``RSICDScenes(root, "train").samples``, or ``(image, captions[, class])`` tuples); every choice is seeded by
``seed`` and the image's file name, so an image gets the same questions whatever else is in the set.
:func:`write_rsvqa` writes the RSVQA on-disk format, which :class:`DerivedVQA` reads like the released files.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geovec.data.base import prompt_name
from geovec.data.rsvqa import RSVQA, normalize_answer
from geovec.data.vqa_facts import caption_facts, class_rates, image_facts, sample_parts
from geovec.data.vqa_questions import (RURAL_URBAN_QUESTION, SCENE_QUESTIONS, Pair, comp_questions, count_question,
                                       paraphrased_pair, presence_question)
from geovec.data.vqa_vocabulary import CITY_WORDS, OBJECT_INDEX, OBJECTS, RURAL_CLASSES, URBAN_CLASSES, VQAObject, tokenize

QUESTION_TYPES = ("presence", "count", "comp", "rural_urban", "scene")


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def generate_pairs(samples: Sequence[Any], reference: Sequence[Any] | None = None, seed: int = 0,
                   max_presence: int = 2, max_count: int = 2, max_comp: int = 2, no_max_class_rate: float = 0.02,
                   min_class_images: int = 20, types: Sequence[str] = QUESTION_TYPES,
                   paraphrase: bool = False) -> list[Pair]:
    """Question/answer pairs for every image of ``samples`` by the rules of :mod:`geovec.data.vqa_facts`.

    ``samples``: dicts with ``image``, ``captions`` (or ``caption_slots``) and optionally ``class_name``, or
    ``(image, captions[, class])`` tuples. ``reference``: the caption set whose per-class object rates decide
    the "no" answers (default: ``samples`` itself; the dev task uses the train captions). Without a class, an
    image belongs to one class-less group. ``types``: which question types to generate. ``paraphrase``: ask each
    pair in a phrasing drawn from the template and :data:`PARAPHRASES`, counts in digits or words
    (:func:`paraphrased_pair`; for training: the dev task keeps the templates).
    """
    unknown = set(types) - set(QUESTION_TYPES)
    if unknown:
        raise ValueError(f"unknown question types {sorted(unknown)}; choose from {list(QUESTION_TYPES)}")
    rates, n_class = class_rates(samples if reference is None else reference)
    out: list[Pair] = []
    for s in samples:
        image, caps, cls = sample_parts(s)
        if not caps:
            continue
        rng = _rng(seed, Path(image).name)
        f = image_facts(caps, cls)
        readable = prompt_name(cls) if cls else None
        pairs: list[Pair] = []
        n_ref = n_class.get(cls, 0)
        class_rate = rates.get(cls, Counter())
        no = [o.name for o in OBJECTS if o.name not in f.touched and n_ref and n_ref >= min_class_images
              and class_rate[o.name] / n_ref < no_max_class_rate]
        no_rule = {n: f"not mentioned; mentioned for {100 * class_rate[n] / n_ref:.1f}% of {n_ref} reference "
                      f"images of class {cls}" for n in no}
        if "presence" in types:
            yes = sorted(f.present)
            k_yes = min(max_presence, len(yes))
            chosen_yes = [yes[i] for i in sorted(rng.choice(len(yes), k_yes, replace=False))] if k_yes else []
            k_no = min(max(k_yes, 1), len(no))
            chosen_no = [no[i] for i in sorted(rng.choice(len(no), k_no, replace=False))] if k_no else []
            for name in chosen_yes:
                pairs.append(Pair(image, "presence", presence_question(OBJECT_INDEX[name], rng), "yes",
                                  f"yes: mentioned in {f.present[name]} of {len(caps)} captions", cls, (name,)))
            for name in chosen_no:
                pairs.append(Pair(image, "presence", presence_question(OBJECT_INDEX[name], rng), "no",
                                  f"no: {no_rule[name]}", cls, (name,)))
        counted = sorted(f.counts)
        # absent objects (the "no" rule) count 0: as many of them as counted ones, for count and comp
        absent = [n for n in no if not OBJECT_INDEX[n].mass]
        zeros = [absent[i] for i in sorted(rng.choice(len(absent), min(len(absent), len(counted), max_count),
                                                      replace=False))] if counted and absent else []
        if "count" in types and counted:
            k = min(max_count, len(counted))
            for i in sorted(rng.choice(len(counted), k, replace=False)):
                o = OBJECT_INDEX[counted[i]]
                pairs.append(Pair(image, "count", count_question(o, rng), str(f.counts[o.name]),
                                  f"count: {f.counts[o.name]} {o.words} stated, no caption disagrees", cls, (o.name,)))
            for name in zeros:
                o = OBJECT_INDEX[name]
                pairs.append(Pair(image, "count", count_question(o, rng), "0",
                                  f"count: 0, {o.words} absent by the presence rule ({no_rule[name]})", cls, (name,)))
        if "comp" in types and counted:
            known = {**{n: f.counts[n] for n in counted}, **{n: 0 for n in zeros}}
            combos = [(a, b) for a in counted for b in sorted(known) if a != b and (b not in counted or a < b)]
            for i in sorted(rng.choice(len(combos), min(max_comp, len(combos)), replace=False)):
                a, b = combos[i]
                if rng.random() < 0.5:
                    a, b = b, a
                pairs.append(_comp_pair(image, OBJECT_INDEX[a], OBJECT_INDEX[b], known[a], known[b], rng, cls))
        if "rural_urban" in types and readable:
            ans = _rural_urban(readable, caps)
            if ans:
                pairs.append(Pair(image, "rural_urban", RURAL_URBAN_QUESTION, ans,
                                  f"{ans}: class {readable}, captions agree", cls))
        if "scene" in types and readable:
            pairs.append(Pair(image, "scene", str(rng.choice(SCENE_QUESTIONS)), readable, f"scene: class {cls}", cls))
        out.extend([paraphrased_pair(p, seed) for p in pairs] if paraphrase else pairs)
    return out


def _comp_pair(image, a: VQAObject, b: VQAObject, na: int, nb: int, rng, cls) -> Pair:
    """A "more" / "fewer" / "equal number" question on two counts: equal counts get the "equal" form half of the
    time, different ones one time in five; otherwise "more" or "fewer", half and half."""
    u = rng.random()
    if (na == nb and u < 0.5) or (na != nb and u < 0.2):
        rel, ans = "equal", na == nb
    elif rng.random() < 0.5:
        rel, ans = "more", na > nb
    else:
        rel, ans = "fewer", na < nb
    return Pair(image, "comp", comp_questions(a, b)[rel], "yes" if ans else "no",
                f"comp: {na} {a.words} vs {nb} {b.words}", cls, (a.name, b.name), rel)


def _rural_urban(readable: str, captions: Sequence[str]) -> str | None:
    with_building = sum("building" in caption_facts(c).present for c in captions)
    text = " ".join(f" {' '.join(tokenize(c))} " for c in captions)
    city = any(f" {w} " in text for w in CITY_WORDS)
    if readable in URBAN_CLASSES and with_building >= 1:
        return "urban"
    if readable in RURAL_CLASSES and with_building <= 1 and not city:
        return "rural"
    return None


def write_rsvqa(pairs: Sequence[Pair], out_dir: str | Path, split: str = "train", prefix: str = "VQA",
                image_dir: str = "images", link: str = "symlink") -> dict[str, Any]:
    """Write ``pairs`` as one RSVQA split: ``<prefix>_split_<split>_{questions,answers,images}.json`` (the
    released fields; every row ``active``) and the image folder ``<image_dir>/``, where each image is
    ``<id><suffix>`` (a symbolic link to the source image, or a copy with ``link="copy"``; a copy also where
    links are not allowed), named in the image row's ``"file"``. Image, question and answer ids count from 0 in
    pair order. Extra fields: questions carry the ``rule`` that produced them, images their ``source`` path.
    Returns the paths and counts."""
    if link not in ("symlink", "copy"):
        raise ValueError("link must be 'symlink' or 'copy'")
    out = Path(out_dir)
    folder = out / image_dir
    folder.mkdir(parents=True, exist_ok=True)
    image_ids: dict[str, int] = {}
    images: list[dict] = []
    questions: list[dict] = []
    answers: list[dict] = []
    for p in pairs:
        if p.image not in image_ids:
            image_ids[p.image] = len(images)
            src = Path(p.image).absolute()
            name = f"{len(images)}{src.suffix.lower()}"
            _place(src, folder / name, link)
            images.append({"id": len(images), "questions_ids": [], "active": True, "file": name,
                           "source": str(src)})
        iid = image_ids[p.image]
        qid = len(questions)
        questions.append({"id": qid, "img_id": iid, "type": p.type, "question": p.question, "answers_ids": [qid],
                          "active": True, "rule": p.rule})
        answers.append({"id": qid, "question_id": qid, "answer": p.answer, "active": True})
        images[iid]["questions_ids"].append(qid)
    files = {}
    for key, rows in (("questions", questions), ("answers", answers), ("images", images)):
        files[key] = out / f"{prefix}_split_{split}_{key}.json"
        files[key].write_text(json.dumps({key: rows}, indent=0))
    return {"files": {k: str(v) for k, v in files.items()}, "image_dir": str(folder), "n_images": len(images),
            "n_questions": len(questions), "types": dict(Counter(q["type"] for q in questions))}


def _place(src: Path, dst: Path, link: str) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if link == "symlink":
        try:
            os.symlink(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


class DerivedVQA(RSVQA):
    """A split written by :func:`write_rsvqa` (``<root>/VQA_split_<split>_*.json`` + ``<root>/images/``), read
    by the RSVQA loader. Answers are normalised the RSVQA-HR way (counts stay numbers): LR's bins would put
    nearly every count stated in a caption into "between 0 and 10"."""

    name = "derived VQA"
    url = "generated by geovec.data.vqa_gen from captions (derived questions, not RSVQA)"
    layout = "<root>/VQA_split_{split}_{questions,answers,images}.json + <root>/images/<id>.<ext>"
    prefix = "VQA"
    image_dir = "images"
    vocab = "HR"
    splits = ("train", "val", "test")


def pairs_to_samples(pairs: Sequence[Pair], vocab: str = "HR") -> list[dict[str, Any]]:
    """The samples :class:`DerivedVQA` reads back from :func:`write_rsvqa` of ``pairs``, without the files: the
    same ids, order and normalised answers, with the source image paths."""
    image_ids: dict[str, int] = {}
    out = []
    for qid, p in enumerate(pairs):
        iid = image_ids.setdefault(p.image, len(image_ids))
        out.append({"image": Path(p.image), "image_id": iid, "question_id": qid, "type": p.type,
                    "question": p.question, "answer": normalize_answer(p.answer, p.type, vocab),
                    "answer_raw": p.answer, "rule": p.rule, "class_name": p.class_name})
    return out


def rsicd_pairs(rsicd_root: str | Path, split: str = "train", seed: int = 0, **options) -> list[Pair]:
    """Pairs from one RSICD split (``RSICDScenes``: captions + class), the "no" rule measured on RSICD ``train``
    captions."""
    from geovec.data.captions import RSICDScenes

    samples = RSICDScenes(rsicd_root, split).samples
    reference = samples if split == "train" else RSICDScenes(rsicd_root, "train").samples
    return generate_pairs(samples, reference=reference, seed=seed, **options)


__all__ = ["QUESTION_TYPES", "DerivedVQA", "generate_pairs", "pairs_to_samples", "rsicd_pairs", "write_rsvqa"]
