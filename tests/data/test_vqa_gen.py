"""The caption -> VQA pair rules on hand-made captions, the RSVQA on-disk round trip, the CLI, and (when
../shared/data is there) the RSICD val pairs."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from geovec.cli import app
from geovec.data import RSVQALR
from geovec.data.vqa_facts import caption_facts, image_facts
from geovec.data.vqa_gen import DerivedVQA, generate_pairs, pairs_to_samples, rsicd_pairs, write_rsvqa
from geovec.train.converters import caption_vqa_examples, rsvqa_examples, vqa_examples
from tests.bench.formats import write_caption_dataset, write_image

# a reference set where every Airport image talks about planes, cars and buildings, and never about boats,
# beaches or snow: "no" may be asked for the latter only
REFERENCE = [(f"ref/airport_{i}.jpg", ["many planes are parked near a terminal building .",
                                       "some cars are on a road near the airport ."], "Airport") for i in range(25)]


def _pairs(captions, cls="Airport", reference=REFERENCE, **kw):
    return generate_pairs([("img/airport_900.jpg", captions, cls)], reference=reference, **kw)


def _by_type(pairs, t):
    return [(p.question, p.answer) for p in pairs if p.type == t]


# --- presence ---------------------------------------------------------------------------------------------------
def test_yes_from_a_mention_no_only_for_objects_rare_in_the_class():
    pairs = _pairs(["three planes are parked on an airport ."] * 5, max_presence=10)
    yes = {q for q, a in _by_type(pairs, "presence") if a == "yes"}
    no = [p for p in pairs if p.type == "presence" and p.answer == "no"]
    assert any("plane" in q for q in yes) and any("airport" in q for q in yes)
    asked_no = " ".join(p.question for p in no)
    # cars and buildings are in every reference Airport image: never "no", though these captions omit them
    assert no and "car" not in asked_no and "building" not in asked_no
    assert all("0.0% of 25 reference images of class Airport" in p.rule for p in no)


def test_no_false_no_for_a_mentioned_synonym_plural_or_hypernym():
    caps = ["two ships are docked at a wharf .", "some villas are near the sea .", "a parking lot is near a road ."]
    f = image_facts(caps, "Airport")
    # ships -> boat, villas -> house -> building, wharf -> port; the parking lot makes "no cars" unsafe
    assert {"boat", "house", "building", "port", "sea", "water", "parking lot", "road"} <= set(f.present)
    assert {"boat", "house", "building", "car", "water"} <= f.touched
    for _ in range(3):
        pairs = _pairs(caps, reference=[(f"r{i}.jpg", ["a runway ."], "Airport") for i in range(25)], max_presence=10)
        noes = [q for q, a in _by_type(pairs, "presence") if a == "no"]
        for word in ("boat", "ship", "house", "villa", "building", "car", "water", "sea", "port"):
            assert not any(word in q for q in noes), (word, noes)


def test_a_hypernym_mention_blocks_no_for_its_hyponyms():
    f = image_facts(["many buildings are near a road ."])
    assert "house" in f.touched and "church" in f.touched and "house" not in f.present


def test_negated_objects_are_asked_neither_way():
    f = caption_facts("the bareland is very barren and there is no green plants .")
    assert "bare land" in f.present and "tree" in f.touched and "tree" not in f.present
    g = caption_facts("no trees were planted on bare land .")
    assert "tree" not in g.present and "tree" in g.touched


def test_small_classes_get_no_no_answers():
    pairs = _pairs(["three planes are on an airport ."], reference=REFERENCE[:5], max_presence=10)
    assert [a for _, a in _by_type(pairs, "presence")] and set(a for _, a in _by_type(pairs, "presence")) == {"yes"}


# --- counts -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("caption, counts", [
    ("three planes are parked on an airport .", {"plane": 3}),
    ("3 planes are parked on an airport .", {"plane": 3}),
    ("two large white storage tanks are near a road .", {"storage tank": 2}),
    ("many green trees are in two sides of a river .", {}),
    ("two rows of green trees are near a building .", {}),
    ("four parts of the square are divided by roads .", {}),
    ("one plane is near the terminal .", {"plane": 1}),
])
def test_counts_from_number_words_and_digits_next_to_an_object(caption, counts):
    assert image_facts([caption]).counts == counts


@pytest.mark.parametrize("captions", [
    ["two planes are on an airport .", "three planes are on an airport ."],  # numbers disagree
    ["three planes are on an airport .", "a plane is near a runway ."],  # a single one named
    ["two planes are on an airport .", "many planes are parked ."],  # "many" against a count of 3 or less
    ["there are no planes but two planes ."],  # negated
    ["many planes are on an airport surrounded by four white planes ."],  # a count beside other mentions
])
def test_no_count_when_the_captions_disagree(captions):
    assert "plane" not in image_facts(captions).counts


def test_no_count_of_a_hypernym_beside_a_hyponym():
    f = image_facts(["two buildings are in two sides of a red church separated by two roads ."])
    assert f.counts == {"road": 2}  # the church is a building too


def test_a_single_one_needs_two_different_captions_and_no_plural():
    assert image_facts(["a bridge is over a river .", "there is a bridge on the river ."]).counts["bridge"] == 1
    assert "bridge" not in image_facts(["a bridge is over a river ."] * 5).counts  # one annotation, copied
    assert "bridge" not in image_facts(["a bridge is over a river .", "a bridge spans it .",
                                        "two bridges are on a river ."]).counts
    assert "bridge" not in image_facts(["a bridge is over a river .", "a bridge spans it .", "bridges ."]).counts


def test_count_and_comparison_questions():
    caps = ["three planes and two runways are on an airport .", "3 planes are parked near two runways ."]
    pairs = _pairs(caps, max_count=5, max_comp=5)
    counts = dict(_by_type(pairs, "count"))
    assert counts and all(a in {"3", "2", "0"} for a in counts.values())
    assert any("planes" in q and a == "3" for q, a in counts.items())
    assert any("runways" in q and a == "2" for q, a in counts.items())
    for p in pairs:
        if p.type == "comp":
            na, nb = (int(x.split()[0]) for x in p.rule.split(": ", 1)[1].split(" vs "))
            want = na > nb if "more" in p.question else na < nb if "fewer" in p.question else na == nb
            assert p.answer == ("yes" if want else "no"), p


# --- scene and rural/urban --------------------------------------------------------------------------------------
def test_scene_and_rural_urban_from_the_class_when_the_text_agrees():
    pairs = generate_pairs([("a/dense_1.jpg", ["many buildings are along a road ."], "DenseResidential"),
                            ("a/farm_1.jpg", ["many farmlands are near a river ."], "Farmland"),
                            ("a/farm_2.jpg", ["a village of buildings .", "many buildings and farms ."], "Farmland"),
                            ("a/beach_1.jpg", ["a yellow beach is near the sea ."], "Beach")])
    ru = {p.image: p.answer for p in pairs if p.type == "rural_urban"}
    assert ru == {"a/dense_1.jpg": "urban", "a/farm_1.jpg": "rural"}  # farm_2 has buildings; beach: no rule
    scene = {p.image: (p.question, p.answer) for p in pairs if p.type == "scene"}
    assert scene["a/dense_1.jpg"][1] == "dense residential" and scene["a/beach_1.jpg"][1] == "beach"
    assert all(q.endswith("?") for q, _ in scene.values())
    assert not [p for p in generate_pairs([("x.jpg", ["a plane ."])]) if p.type in ("scene", "rural_urban")]


def test_deterministic_and_independent_of_the_other_images():
    one = _pairs(["three planes are parked on an airport .", "some cars ."])
    assert one == _pairs(["three planes are parked on an airport .", "some cars ."])
    both = generate_pairs([("img/other_1.jpg", ["a bridge is over a river ."], "Bridge"),
                           ("img/airport_900.jpg", ["three planes are parked on an airport .", "some cars ."],
                            "Airport")], reference=REFERENCE)
    assert [p for p in both if p.image == "img/airport_900.jpg"] == one


# --- the RSVQA on-disk format -----------------------------------------------------------------------------------
def _fixture_pairs(tmp_path):
    samples = []
    for i, caps in enumerate([["three planes are parked on an airport .", "3 planes are near a runway ."],
                              ["a bridge is over a river .", "there is a bridge on the river ."],
                              ["many buildings are along a road ."]]):
        path = write_image(tmp_path / "src" / f"img_{i}.jpg", i)
        samples.append({"image": path, "captions": caps, "class_name": ["Airport", "Bridge", "DenseResidential"][i]})
    return generate_pairs(samples, reference=REFERENCE + samples, min_class_images=1)


def test_round_trip_through_the_rsvqa_loader(tmp_path):
    pairs = _fixture_pairs(tmp_path)
    info = write_rsvqa(pairs, tmp_path / "out", split="train")
    files = {k: json.loads((tmp_path / "out" / f"VQA_split_train_{k}.json").read_text())[k]
             for k in ("questions", "answers", "images")}
    assert info["n_questions"] == len(pairs) == len(files["questions"]) == len(files["answers"])
    assert all(r["active"] for rows in files.values() for r in rows)
    assert set(files["questions"][0]) >= {"id", "img_id", "type", "question", "answers_ids", "active"}
    assert set(files["answers"][0]) >= {"id", "question_id", "answer", "active"}
    assert set(files["images"][0]) >= {"id", "questions_ids", "active"}
    ds = DerivedVQA(tmp_path / "out", "train")
    mem = pairs_to_samples(pairs)
    assert [(s["image_id"], s["question_id"], s["type"], s["question"], s["answer"]) for s in ds.samples] == \
        [(s["image_id"], s["question_id"], s["type"], s["question"], s["answer"]) for s in mem]
    assert [s["image"].resolve() for s in ds.samples] == [s["image"].resolve() for s in mem]
    assert {s["answer"] for s in ds.samples if s["type"] == "count"} >= {"3", "1"}  # HR: counts stay numbers
    # the converter reads it, and so does the LR loader under its own prefix (LR bins the counts)
    ex = list(rsvqa_examples(tmp_path / "out", "train", prefix="VQA", image_dir="images"))
    assert len(ex) == len(pairs) and ex[0].task == "vqa" and ex[0].query["text"] == pairs[0].question
    write_rsvqa(pairs, tmp_path / "lr", split="train", prefix="LR", image_dir="Images_LR", link="copy")
    lr = RSVQALR(tmp_path / "lr", "train")
    assert {s["answer"] for s in lr.samples if s["type"] == "count"} <= {"0", "between 0 and 10"}
    assert not (tmp_path / "lr" / "Images_LR" / "0.jpg").is_symlink()


def test_vqa_examples_of_a_caption_set(tmp_path):
    pairs = _fixture_pairs(tmp_path)  # caption_vqa_examples = generate -> samples -> vqa_examples
    direct = [e.to_json() for e in vqa_examples(pairs_to_samples(pairs))]
    src = [{"image": tmp_path / "src" / f"img_{i}.jpg", "captions": caps, "class_name": c}
           for i, (caps, c) in enumerate([(["three planes are parked on an airport .", "3 planes are near a runway ."],
                                           "Airport"),
                                          (["a bridge is over a river .", "there is a bridge on the river ."], "Bridge"),
                                          (["many buildings are along a road ."], "DenseResidential")])]
    via = [e.to_json() for e in caption_vqa_examples(src, reference=REFERENCE + src, min_class_images=1)]
    assert via == direct
    neg = list(caption_vqa_examples(src, reference=REFERENCE + src, min_class_images=1, type_negatives=True))
    yes = next(e for e in neg if e.positives == [{"text": "yes"}])
    assert yes.negatives == [{"text": "no"}]  # the other answers of the question type


def test_cli_writes_the_rsvqa_files(tmp_path):
    entries = [(f"airport_{i}.jpg", "train", ["three planes are parked on an airport .", "a runway ."])
               for i in range(3)] + [("bridge_1.jpg", "val", ["a bridge is over a river .", "a bridge spans it ."])]
    write_caption_dataset(tmp_path / "caps", "imgs", "dataset.json", entries)
    (tmp_path / "caps" / "classes").mkdir()
    (tmp_path / "caps" / "classes" / "Airport.txt").write_text("".join(f"airport_{i}.jpg\n" for i in range(3)))
    (tmp_path / "caps" / "classes" / "Bridge.txt").write_text("bridge_1.jpg\n")
    res = CliRunner().invoke(app, ["data", "vqa-gen", "--captions", str(tmp_path / "caps" / "dataset.json"),
                                   "--images", str(tmp_path / "caps" / "imgs"), "--out", str(tmp_path / "out"),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["n_images"] == 3 and info["types"]["scene"] == 3 and info["types"]["count"] >= 3
    ds = DerivedVQA(tmp_path / "out", "train")
    assert Counter(s["type"] for s in ds.samples) == Counter(info["types"])
    res = CliRunner().invoke(app, ["data", "vqa-gen", "--captions", str(tmp_path / "caps" / "dataset.json"),
                                   "--images", str(tmp_path / "caps" / "imgs"), "--split", "val",
                                   "--out", str(tmp_path / "val")])
    assert res.exit_code == 0 and "questions on 1 images" in res.output, res.output


# --- on the real RSICD val (skipped without ../shared/data) -----------------------------------------------------
def test_rsicd_val_pairs(shared_data):
    pairs = rsicd_pairs(shared_data / "rsicd", "val")
    types = Counter(p.type for p in pairs)
    assert set(types) == {"presence", "count", "comp", "rural_urban", "scene"}
    assert types["scene"] == 491 and types["presence"] > 1500 and types["count"] > 150
    presence = Counter(p.answer for p in pairs if p.type == "presence")
    assert abs(presence["yes"] - presence["no"]) <= 0.1 * types["presence"]
    assert pairs == rsicd_pairs(shared_data / "rsicd", "val")  # seeded
