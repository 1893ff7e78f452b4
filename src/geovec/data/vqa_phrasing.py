"""Held-out phrasings of the derived VQA questions: wordings the training generator never uses.

:mod:`geovec.data.vqa_gen` asks each question type in a few fixed phrasings ("Are there planes in the image?",
"How many planes are there in the image?") and answers counts in digits ("3"). A model can learn those strings
instead of the question. :func:`held_out_pair` rewrites a generated pair with the same meaning and answer in a
phrasing from :data:`HELD_OUT_QUESTIONS` (the way other people ask: "Does this picture contain any planes?",
"How many planes can you see?") and, for counts, the answer as a number word ("three"; digits above twenty).
The dev task ``dev-VQA-phrasing`` scores both wordings of the same questions on the same images.

The banks here must stay disjoint from every training phrasing (:func:`training_phrasings`); the tests check it,
so a paraphrase bank added to training cannot leak into this evaluation.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from geovec.data.vqa_gen import NUMBER_WORDS, OBJECT_INDEX, SINGULAR_QUESTIONS, Pair, VQAObject, _article

#: question type (and, for presence, the object's kind) -> held-out templates; ``{a}`` the article of ``{word}``
HELD_OUT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "presence_plural": ("Does this picture contain any {words}?", "Can you see {words} in this picture?",
                        "Are any {words} visible here?", "Do you spot any {words} in this photo?"),
    "presence_singular": ("Does this picture contain {a} {word}?", "Can you see {a} {word} in this picture?",
                          "Is {a} {word} visible here?", "Do you spot {a} {word} in this photo?"),
    "presence_mass": ("Does this picture contain any {word}?", "Can you see {word} in this picture?",
                      "Is any {word} visible here?", "Do you spot any {word} in this photo?"),
    "count": ("How many {words} are in the picture?", "How many {words} can you see?",
              "Count the {words} in this photo.", "What is the count of {words} here?"),
    "comp_more": ("Does this picture show more {a} than {b}?", "Do {a} outnumber {b} here?"),
    "comp_fewer": ("Does this picture show fewer {a} than {b}?", "Are {a} less numerous than {b} here?"),
    "comp_equal": ("Are there as many {a} as {b} in this picture?", "Do {a} and {b} appear in equal numbers here?"),
    "rural_urban": ("Would you call this area urban or rural?", "Is the land shown here urban or rural?"),
    "scene": ("Which land-use category does this picture belong to?", "What sort of area does this photo show?"),
}
_NUMBER_NAMES = {n: w for w, n in NUMBER_WORDS.items()}


def number_word(n: int) -> str:
    """``3`` -> ``"three"`` (0-20 as words, larger counts in digits: how people write them)."""
    return _NUMBER_NAMES.get(n, str(n))


def _presence_key(o: VQAObject) -> str:
    if o.name in SINGULAR_QUESTIONS:
        return "presence_singular"
    return "presence_mass" if o.mass else "presence_plural"


def held_out_pair(pair: Pair, seed: int = 0) -> Pair:
    """``pair`` asked in a held-out phrasing (same image, type, meaning and answer; counts answered in words).
    The template is drawn with a generator seeded by ``seed``, the image name and the original question."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{pair.image}|{pair.question}".encode())])
    answer = pair.answer
    if pair.type in ("presence", "count"):
        o = OBJECT_INDEX[pair.objects[0]]
        key = _presence_key(o) if pair.type == "presence" else "count"
        slots = {"word": o.word, "words": o.words, "a": _article(o.word)}
        if pair.type == "count":
            answer = number_word(int(pair.answer))
    elif pair.type == "comp":
        a, b = (OBJECT_INDEX[n] for n in pair.objects)
        key, slots = f"comp_{pair.relation}", {"a": a.words, "b": b.words}
    elif pair.type in ("rural_urban", "scene"):
        key, slots = pair.type, {}
    else:
        raise ValueError(f"no held-out phrasing for question type {pair.type!r}")
    question = str(rng.choice(HELD_OUT_QUESTIONS[key])).format(**slots)
    return replace(pair, question=question, answer=answer, rule=f"{pair.rule} (held-out phrasing)")


def training_phrasings() -> set[str]:
    """Every question string the training generator can produce for the vocabulary's objects (the in-template
    phrasings and any paraphrase bank of :mod:`geovec.data.vqa_gen`), for the disjointness check."""
    from geovec.data import vqa_gen

    out: set[str] = set(vqa_gen.SCENE_QUESTIONS) | {vqa_gen.RURAL_URBAN_QUESTION}
    for o in vqa_gen.OBJECTS:
        out |= set(vqa_gen.presence_questions(o)) | set(vqa_gen.count_questions(o))
        for b in vqa_gen.OBJECTS:
            if b is not o:
                out |= set(vqa_gen.comp_questions(o, b).values())
    return out


def held_out_phrasings() -> set[str]:
    """Every question string :func:`held_out_pair` can produce for the vocabulary's objects."""
    out: set[str] = set(HELD_OUT_QUESTIONS["rural_urban"]) | set(HELD_OUT_QUESTIONS["scene"])
    for o in OBJECT_INDEX.values():
        slots = {"word": o.word, "words": o.words, "a": _article(o.word)}
        out |= {t.format(**slots) for t in HELD_OUT_QUESTIONS[_presence_key(o)] + HELD_OUT_QUESTIONS["count"]}
        for b in OBJECT_INDEX.values():
            if b is not o:
                for rel in ("more", "fewer", "equal"):
                    out |= {t.format(a=o.words, b=b.words) for t in HELD_OUT_QUESTIONS[f"comp_{rel}"]}
    return out
