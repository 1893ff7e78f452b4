"""Held-out VQA phrasings: disjoint from every training phrasing, same meaning and answer, counts in words."""

from __future__ import annotations

import pytest

from geovec.data.vqa_gen import generate_pairs
from geovec.data.vqa_questions import answer_value, number_word
from geovec.data.vqa_vocabulary import OBJECT_INDEX
from geovec.data.vqa_phrasing import (
    HELD_OUT_QUESTIONS,
    HELD_OUT_WORDS,
    held_out_pair,
    held_out_phrasings,
    training_phrasings,
)

SAMPLES = [
    {"image": f"/x/airport_{k}.jpg", "class_name": "Airport",
     "captions": ["three planes are parked near a runway .", "3 planes are beside the terminal building .",
                  "some buildings are near the airport ."]}
    for k in range(25)
] + [
    {"image": f"/x/forest_{k}.jpg", "class_name": "Forest",
     "captions": ["many green trees in a forest .", "a dense forest .", "trees cover the hills ."]}
    for k in range(25)
]


def test_held_out_phrasings_never_appear_in_training():
    train, held = training_phrasings(), held_out_phrasings()
    assert len(train) > 1000 and len(held) > 1000
    assert not train & held
    lowered = {t.lower().rstrip("?.") for t in train}
    assert not {t.lower().rstrip("?.") for t in held} & lowered


def test_no_training_phrasing_uses_a_held_out_word():
    for q in training_phrasings():
        assert not [w for w in HELD_OUT_WORDS if w in q.lower()], q
    assert any(w in q.lower() for q in held_out_phrasings() for w in HELD_OUT_WORDS)


@pytest.mark.parametrize("paraphrase", [False, True])
def test_training_phrasings_cover_what_the_generator_asks(paraphrase):
    asked = {p.question for p in generate_pairs(SAMPLES, seed=3, paraphrase=paraphrase)}
    assert asked and asked <= training_phrasings()
    assert not asked & held_out_phrasings()


def test_paraphrased_pairs_vary_wording_and_keep_meaning():
    plain = generate_pairs(SAMPLES, seed=0)
    para = generate_pairs(SAMPLES, seed=0, paraphrase=True)
    assert [(p.image, p.type, p.objects, answer_value(p.answer)) for p in plain] == \
        [(p.image, p.type, p.objects, answer_value(p.answer)) for p in para]
    assert len({p.question for p in para}) > len({p.question for p in plain})
    assert any(p.question not in {x.question for x in plain} for p in para)
    counts = [p.answer for p in para if p.type == "count"]
    assert any(a.isdigit() for a in counts) and any(not a.isdigit() for a in counts)  # digits and words
    assert para == generate_pairs(SAMPLES, seed=0, paraphrase=True)


def test_negatives_never_hold_another_wording_of_the_answer():
    from geovec.data.vqa_gen import pairs_to_samples
    from geovec.train.converters import vqa_examples

    samples = pairs_to_samples(generate_pairs(SAMPLES, seed=0, paraphrase=True))
    for ex in vqa_examples(samples, type_negatives=True):
        pos = answer_value(ex.positives[0]["text"])
        assert all(answer_value(n["text"]) != pos for n in ex.negatives)
    assert answer_value("three") == answer_value("3") == "3" and answer_value("yes") == "yes"


def test_held_out_pairs_keep_type_meaning_and_answer():
    pairs = generate_pairs(SAMPLES, seed=0)
    assert {"presence", "count", "comp", "rural_urban", "scene"} & {p.type for p in pairs} >= {"presence", "count"}
    for p in pairs:
        h = held_out_pair(p)
        assert (h.image, h.type, h.class_name, h.objects) == (p.image, p.type, p.class_name, p.objects)
        assert h.question != p.question and h.question in held_out_phrasings()
        if p.type == "count":
            assert h.answer == number_word(int(p.answer)) and not h.answer.isdigit()
        else:
            assert h.answer == p.answer
        for name in p.objects:  # the objects asked about are named in the new question
            o = OBJECT_INDEX[name]
            assert o.word in h.question or o.words in h.question
        if p.type == "comp":
            templates = HELD_OUT_QUESTIONS[f"comp_{p.relation}"]
            a, b = (OBJECT_INDEX[n].words for n in p.objects)
            assert h.question in {t.format(a=a, b=b) for t in templates}
    assert [held_out_pair(p).question for p in pairs] == [held_out_pair(p).question for p in pairs]
    assert [held_out_pair(p, seed=1).question for p in pairs] != [held_out_pair(p).question for p in pairs]


@pytest.mark.parametrize("n, word", [(0, "zero"), (3, "three"), (12, "twelve"), (20, "twenty"), (21, "21"), (40, "40")])
def test_number_words(n, word):
    assert number_word(n) == word


def test_unknown_type_is_an_error():
    p = generate_pairs(SAMPLES[:1] + SAMPLES[25:26], reference=SAMPLES, seed=0)[0]
    from dataclasses import replace

    with pytest.raises(ValueError, match="no phrasings for question type 'area'"):
        held_out_pair(replace(p, type="area"))
