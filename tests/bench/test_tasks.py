from pathlib import Path

import numpy as np
import pytest
from tests.bench.formats import (
    write_caption_dataset,
    write_class_folders,
    write_dior_rsvg,
    write_patterncom,
    write_rsvqa,
    write_rsvqa_official,
)

from geovec.bench import builders
from geovec.data import DatasetNotFoundError
from geovec.bench.task_data import BuildContext
from geovec.bench.tasks import META_TASKS, TASKS, get_task, tasks_in
from geovec.models.instructions import TASKS as INSTRUCTION_KINDS


def test_rsmeb_covers_the_spec_in_six_meta_tasks():
    # the spec's 21 tasks, with the 6 retrieval directions scored as one task per dataset (mR over both
    # directions, the published protocol) and HRBEN's two test sets as two tasks
    rsmeb = tasks_in("rsmeb")
    per_meta = {m: sum(t.meta_task == m for t in rsmeb) for m in META_TASKS}
    assert per_meta == {"classification": 6, "retrieval": 3, "composed": 1, "vqa": 3, "region": 4, "geo": 2}
    assert {t.name for t in rsmeb if t.meta_task == "retrieval"} == {
        "RSICD-retrieval", "RSITMD-retrieval", "UCM-captions-retrieval"}


def test_dev_suite_covers_every_meta_task():
    dev = tasks_in("rsmeb-dev")
    # VQA with questions derived from the RSICD val captions (shared/data has no question/answer text)
    assert {t.meta_task for t in dev} == set(META_TASKS)
    assert all(t.name.startswith("dev-") for t in dev)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_metadata_is_complete(name):
    t = TASKS[name]
    md = t.metadata()
    for key in ("name", "meta_task", "dataset", "split", "query_modalities", "candidate_modalities", "main_score",
                "query_task", "candidate_task"):
        assert md[key], key
    assert t.query_kind in INSTRUCTION_KINDS and t.candidate_kind in INSTRUCTION_KINDS
    assert t.main_score in ("p@1", "mR", "map")
    assert set(t.query_modalities) | set(t.candidate_modalities) <= {"image", "text", "box", "location"}


def test_unknown_task_and_suite():
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")
    with pytest.raises(ValueError, match="unknown suite"):
        tasks_in("mteb")


def test_missing_data_raises_the_dataset_error(tmp_path):
    for t in tasks_in("rsmeb"):
        with pytest.raises(DatasetNotFoundError):
            t.build(BuildContext(tmp_path, tmp_path / "cache"))


# --- constructions on fixtures ----------------------------------------------------------------------------------
def test_caption_retrieval_golds(tmp_path):
    # RSICD-style copies: "a one ." twice for a.jpg, and "shared ." describes both images
    entries = [("a.jpg", "test", ["a one .", "a one .", "shared ."]),
               ("b.jpg", "test", ["b one .", "shared .", "b three ."])]
    write_caption_dataset(tmp_path / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    ctx = BuildContext(tmp_path, tmp_path / "cache")
    data = get_task("RSICD-retrieval").build(ctx)
    # the published protocol: every slot is a candidate / query, duplicates included
    slots = data.parts["i2t"]
    assert [c["text"] for c in slots.candidates] == ["a one .", "a one .", "shared .", "b one .", "shared .", "b three ."]
    assert slots.gold == [[0, 1, 2], [3, 4, 5]]
    assert data.parts["t2i"].gold == [[0], [0], [0], [1], [1], [1]]
    assert data.main_parts == ("i2t", "t2i")
    # the distinct-caption extra
    i2t, t2i = data.parts["i2t_distinct"], data.parts["t2i_distinct"]
    assert [c["text"] for c in i2t.candidates] == ["a one .", "shared .", "b one .", "b three ."]
    assert i2t.gold == [[0, 1], [1, 2, 3]]
    assert [q["text"] for q in t2i.queries] == ["a one .", "shared .", "b one .", "b three ."]
    assert t2i.gold == [[0], [0, 1], [1], [1]] and len(t2i.candidates) == 2
    assert i2t.info["n_captions"] == 6 and i2t.info["n_distinct_captions"] == 4


def test_vqa_ranks_within_the_answer_vocabulary_of_the_type(tmp_path):
    write_rsvqa(tmp_path / "rsvqa_lr", "LR", "Images_LR", "test")
    d = get_task("RSVQA-LR").build(BuildContext(tmp_path, tmp_path))
    texts = [c["text"] for c in d.candidates]
    # LR counts are binned as the official VocabEncoder does ("4" and "12" are raw answers)
    assert sorted(zip(d.candidate_groups, texts)) == [("count", "between 0 and 10"), ("count", "between 10 and 100"),
                                                      ("presence", "no"), ("presence", "yes")]
    assert d.query_labels == ["presence", "count", "presence", "count"]
    assert [texts[g[0]] for g in d.gold] == ["yes", "between 0 and 10", "no", "between 10 and 100"]
    assert d.queries[0]["text"] == "Is there a building?"
    assert d.info["vqa_overall"] == "mean over questions" and d.info["vqa_average"] == "mean over query_labels"
    assert d.info["question_types"] == {"count": 2, "presence": 2}


def test_the_two_hrben_test_sets_are_two_tasks(tmp_path):
    write_rsvqa_official(tmp_path / "rsvqa_hr", "USGS", "Data", {
        "test": [(0, [("area", "What is the area covered by buildings?", "12m2"),
                      ("count", "How many roads are there?", "3")])],
        "test_phili": [(1, [("area", "What is the area covered by roads?", "5000m2"),
                            ("presence", "Is there a road?", "yes")])],
        "train": [(2, [("count", "How many buildings are there?", "7")])],
    })
    ctx = BuildContext(tmp_path, tmp_path)
    hr, phili = get_task("RSVQA-HR"), get_task("RSVQA-HR-phili")
    assert (hr.split, phili.split) == ("test", "test_phili")
    a, b = hr.build(ctx), phili.build(ctx)
    assert [q["text"] for q in a.queries] == ["What is the area covered by buildings?", "How many roads are there?"]
    assert [a.candidates[g[0]]["text"] for g in a.gold] == ["between 10m2 and 100m2", "3"]
    assert [b.candidates[g[0]]["text"] for g in b.gold] == ["more than 1000m2", "yes"]
    assert b.query_labels == ["area", "presence"]


def test_nwpu_resisc12_dev_task(tmp_path):
    from geovec.data import NWPURESISC12

    write_class_folders(tmp_path / "nwpu_resisc12", {c: [f"{c}_001.jpg", f"{c}_002.jpg"] for c in NWPURESISC12.classes})
    t = get_task("dev-NWPU-RESISC12-scene")
    assert (t.suite, t.meta_task, t.split, t.main_score) == ("rsmeb-dev", "classification", "all (zero-shot)", "p@1")
    assert "never trained on" in t.description
    d = t.build(BuildContext(tmp_path, tmp_path))
    assert len(d.queries) == 24 and len(d.candidates) == 12
    assert d.candidates[1]["text"] == "a remote sensing image of commercial area."
    assert d.info["template"] == builders.CLASS_TEMPLATE
    assert len(d.info["templates"]) == 106 and "a satellite photo of a {}." in d.info["templates"]


@pytest.mark.shared_data
def test_nwpu_resisc12_dev_task_on_the_real_folder(shared_data, tmp_path):
    d = get_task("dev-NWPU-RESISC12-scene").build(BuildContext(shared_data, tmp_path))
    assert len(d.queries) == 1200 and len(d.candidates) == 12 and d.info["n_classes"] == 12


def test_dior_region_tasks(tmp_path):
    images = {"00001": [("airplane", (5, 5, 30, 30), "the large airplane"), ("vehicle", (40, 40, 60, 60), "a car")],
              "00002": [("airplane", (0, 0, 20, 20), "the airplane at the top left")]}
    write_dior_rsvg(tmp_path / "DIOR_RSVG", images, {"test": [0, 1, 2]})
    ctx = BuildContext(tmp_path, tmp_path)
    cap = get_task("DIOR-RSVG-region-caption").build(ctx)
    assert cap.queries[1] == {"image": tmp_path / "DIOR_RSVG" / "JPEGImages" / "00001.jpg", "box": [40.0, 40.0, 60.0, 60.0]}
    assert [cap.candidates[g[0]]["text"] for g in cap.gold] == ["the large airplane", "a car", "the airplane at the top left"]
    ref = get_task("DIOR-RSVG-referring").build(ctx)
    assert ref.within_groups[0] == ["00001", "00001", "00002"] and ref.gold == [[0], [1], [2]]
    cls = get_task("DIOR-RSVG-box-class").build(ctx)
    assert [c["text"] for c in cls.candidates] == [builders.CLASS_TEMPLATE.format(n) for n in ("airplane", "vehicle")]
    rr = get_task("DIOR-RSVG-region-region").build(ctx)
    assert rr.gold == [[2], [0]] and list(rr.exclude) == [0, 2]  # the lone vehicle has no partner


PATTERNCOM_ROWS = {
    # dense and sparse residential are one group for density (rscir fix_query_attributelabels)
    "density": [("denseresidential001.jpg", "density", "high"), ("denseresidential002.jpg", "density", "high"),
                ("sparseresidential001.jpg", "density", "low"), ("sparseresidential002.jpg", "density", "low")],
    "color": [("swimmingpool001.jpg", "color", "blue"), ("swimmingpool002.jpg", "color", "green"),
              ("swimmingpool003.jpg", "color", "blue"),
              ("tenniscourt001.jpg", "color", "green"),  # same value, other class: never a positive for pools
              # bridge/overpass: separate groups for color, but one class for relevance (rscir class_mapping)
              ("bridge001.jpg", "color", "white"), ("bridge002.jpg", "color", "grey"), ("overpass001.jpg", "color", "white")],
}


def test_patterncom_queries_positives_and_pool(tmp_path):
    write_patterncom(tmp_path, PATTERNCOM_ROWS)
    d = get_task("PatternCom-composed").build(BuildContext(tmp_path, tmp_path))
    name = [Path(c["image"]).name for c in d.candidates]
    assert len(name) == 7 + 4 + 38  # every PatternNet image, not only the csv ones
    q = [(Path(x["image"]).name, x["text"]) for x in d.queries]
    golds = [sorted(name[j] for j in g) for g in d.gold]
    assert list(zip(q, golds, d.query_labels)) == [
        (("swimmingpool001.jpg", "green"), ["swimmingpool002.jpg"], "color"),
        (("swimmingpool002.jpg", "blue"), ["swimmingpool001.jpg", "swimmingpool003.jpg"], "color"),
        (("swimmingpool003.jpg", "green"), ["swimmingpool002.jpg"], "color"),
        (("bridge001.jpg", "grey"), ["bridge002.jpg"], "color"),
        (("bridge002.jpg", "white"), ["bridge001.jpg", "overpass001.jpg"], "color"),
        (("denseresidential001.jpg", "low"), ["sparseresidential001.jpg", "sparseresidential002.jpg"], "density"),
        (("denseresidential002.jpg", "low"), ["sparseresidential001.jpg", "sparseresidential002.jpg"], "density"),
        (("sparseresidential001.jpg", "high"), ["denseresidential001.jpg", "denseresidential002.jpg"], "density"),
        (("sparseresidential002.jpg", "high"), ["denseresidential001.jpg", "denseresidential002.jpg"], "density"),
    ]  # tennis court and overpass rows have no other value in their group: no query
    assert d.info["main_score_aggregation"] == "mean over query_labels"
    assert d.info["n_queries_per_attribute"] == {"color": 5, "density": 4} and d.info["n_candidates"] == 49


def test_patterncom_map_is_the_mean_of_the_per_attribute_maps(tmp_path):
    from geovec.bench.runner import score_part

    write_patterncom(tmp_path, PATTERNCOM_ROWS)
    d = get_task("PatternCom-composed").build(BuildContext(tmp_path, tmp_path))
    name = [Path(c["image"]).name for c in d.candidates]
    # one fixed ranking for every query: these 11 images first, in this order, then the other 38
    order = ["sparseresidential001.jpg", "denseresidential001.jpg", "swimmingpool002.jpg", "bridge001.jpg",
             "sparseresidential002.jpg", "overpass001.jpg", "swimmingpool001.jpg", "tenniscourt001.jpg",
             "denseresidential002.jpg", "swimmingpool003.jpg", "bridge002.jpg"]
    score = np.array([-order.index(n) if n in order else -100.0 - j for j, n in enumerate(name)])
    Q = np.tile(score, (len(d.queries), 1))
    C = np.eye(len(name))
    scores, qs = score_part(d, Q, C, "map")
    # by hand, AP = mean over positives of (positives up to rank k) / k, ranks in the order above:
    # density: dense -> low: positives at ranks 1, 5: (1/1 + 2/5) / 2 = 0.7 (twice);
    #          sparse -> high: ranks 2, 9: (1/2 + 2/9) / 2 = 13/36 (twice)
    density = (0.7 + 0.7 + 13 / 36 + 13 / 36) / 4
    # color: pool1 -> green: rank 3: 1/3; pool2 -> blue: ranks 7, 10: (1/7 + 2/10) / 2; pool3 -> green: 1/3;
    #        bridge1 -> grey: rank 11: 1/11; bridge2 -> white: ranks 4, 6: (1/4 + 2/6) / 2
    color = (1 / 3 + (1 / 7 + 0.2) / 2 + 1 / 3 + 1 / 11 + (0.25 + 2 / 6) / 2) / 5
    assert scores["map_by_label"]["density"] == pytest.approx(density)
    assert scores["map_by_label"]["color"] == pytest.approx(color)
    assert scores["map"] == pytest.approx((density + color) / 2)  # 0.3873, not the mean over the 9 queries (0.3714)
    assert scores["map_mean_over_queries"] == pytest.approx((4 * density + 5 * color) / 9)


def test_patterncom_duplicate_row_counts_with_its_last_value(tmp_path):
    rows = {"color": [("swimmingpool001.jpg", "color", "blue"), ("swimmingpool002.jpg", "color", "green"),
                      ("swimmingpool002.jpg", "color", "blue")]}
    write_patterncom(tmp_path, rows)
    d = get_task("PatternCom-composed").build(BuildContext(tmp_path, tmp_path))
    name = [Path(c["image"]).name for c in d.candidates]
    # rscir maps a retrieved file to its last csv row: swimmingpool002 counts as "blue" (so the query on its own
    # "green" row has itself as a positive), and the two "green" queries have no positive (rscir: AP 0; left out)
    assert [(Path(q["image"]).name, q["text"], sorted(name[j] for j in g)) for q, g in zip(d.queries, d.gold)] == [
        ("swimmingpool002.jpg", "blue", ["swimmingpool001.jpg", "swimmingpool002.jpg"])]
    assert d.info["n_queries_without_positives"] == {"color": 2}
