"""Held-out phrasings of the derived VQA questions: wordings the training generator never uses.

:mod:`geovec.data.vqa_gen` asks each question type in a few fixed phrasings ("Are there planes in the image?",
"How many planes are there in the image?"), plus its training paraphrases (:data:`geovec.data.vqa_questions.PARAPHRASES`)
when asked to. A model can learn those strings instead of the question. :func:`held_out_pair` rewrites a generated
pair with the same meaning and answer in a phrasing from :data:`HELD_OUT_QUESTIONS` (the way other people ask:
"Does this picture contain any planes?", "How many planes can you see?") and, for counts, the answer as a number
word ("three"; digits above twenty). The dev task ``dev-VQA-phrasing`` scores both wordings of the same questions
on the same images.

The banks here must stay disjoint from every training phrasing (:func:`training_phrasings`, templates and
paraphrases): the tests check the strings and the marker words (:data:`HELD_OUT_WORDS`).
"""

from __future__ import annotations

import zlib

import numpy as np

from geovec.data.vqa_questions import PARAPHRASES, Pair, fill, question_kind, rephrase
from geovec.data.vqa_vocabulary import OBJECTS

#: question kind (:func:`geovec.data.vqa_questions.question_kind`) -> held-out templates
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
#: words of the held-out phrasings that no training phrasing may use
HELD_OUT_WORDS = ("picture", "photo", "visible", "spot", "you", "outnumber", "numerous", "as many", "land-use",
                  "sort of", "count the", "count of", "here?", "equal numbers", "the land")


def held_out_pair(pair: Pair, seed: int = 0) -> Pair:
    """``pair`` asked in a held-out phrasing (same image, type, meaning and answer; counts answered in words).
    The template is drawn with a generator seeded by ``seed``, the image name and the original question."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{pair.image}|{pair.question}".encode())])
    return rephrase(pair, HELD_OUT_QUESTIONS, rng, number_words=1.0, note="held-out phrasing")


def _every_pair_shape() -> list[Pair]:
    """One pair per question kind and object (pair of objects for comp), for listing every phrasing."""
    out = [Pair("", "rural_urban", "", "", ""), Pair("", "scene", "", "", "")]
    for o in OBJECTS:
        out += [Pair("", "presence", "", "yes", "", objects=(o.name,)), Pair("", "count", "", "1", "", objects=(o.name,))]
        out += [Pair("", "comp", "", "yes", "", objects=(o.name, b.name), relation=r)
                for b in OBJECTS if b is not o for r in ("more", "fewer", "equal")]
    return out


def _phrasings(bank: dict[str, tuple[str, ...]]) -> set[str]:
    return {fill(t, p) for p in _every_pair_shape() for t in bank[question_kind(p)]}


def training_phrasings() -> set[str]:
    """Every question string the training generator can produce for the vocabulary's objects: the template
    phrasings (:func:`geovec.data.vqa_questions.presence_questions` ...) and :data:`geovec.data.vqa_questions.PARAPHRASES`."""
    from geovec.data import vqa_questions as asked

    out: set[str] = set(asked.SCENE_QUESTIONS) | {asked.RURAL_URBAN_QUESTION} | _phrasings(PARAPHRASES)
    for o in OBJECTS:
        out |= set(asked.presence_questions(o)) | set(asked.count_questions(o))
        for b in OBJECTS:
            if b is not o:
                out |= set(asked.comp_questions(o, b).values())
    return out


def held_out_phrasings() -> set[str]:
    """Every question string :func:`held_out_pair` can produce for the vocabulary's objects."""
    return _phrasings(HELD_OUT_QUESTIONS)
