import pytest
from tests.bench.formats import write_caption_dataset, write_dior_rsvg, write_patterncom, write_rsvqa

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


def test_dev_suite_covers_every_meta_task_but_vqa():
    dev = tasks_in("rsmeb-dev")
    assert {t.meta_task for t in dev} == set(META_TASKS) - {"vqa"}  # no question/answer text in shared/data
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
    assert sorted(zip(d.candidate_groups, texts)) == [("count", "12"), ("count", "4"), ("presence", "no"),
                                                      ("presence", "yes")]
    assert d.query_labels == ["presence", "count", "presence", "count"]
    assert [texts[g[0]] for g in d.gold] == ["yes", "4", "no", "12"]
    assert d.queries[0]["text"] == "Is there a building?"


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


def test_patterncom_queries_use_the_other_values(tmp_path):
    write_patterncom(tmp_path, {"color": [("swimming_pool001.jpg", "swimming_pool", "blue"),
                                          ("swimming_pool002.jpg", "swimming_pool", "green"),
                                          ("swimming_pool003.jpg", "swimming_pool", "blue")]})
    d = get_task("PatternCom-composed").build(BuildContext(tmp_path, tmp_path))
    assert [q["text"] for q in d.queries] == ["green", "blue", "green"]
    assert d.gold == [[1], [0, 2], [1]]
    assert d.query_labels == ["color"] * 3
