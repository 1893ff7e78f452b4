"""NWPU VHR-10 reader (official ground-truth format), its seeded whole-image split, size bins and the position
phrases of the referring task, on generated fixtures (and the real release when ../shared/data is there)."""

from __future__ import annotations

import hashlib

import pytest

from geovec.data import DatasetNotFoundError, NWPUVHR10
from geovec.data.nwpu_vhr10 import (
    DEV_FRACTION,
    is_dev_image,
    parse_ground_truth,
    referring_expression,
    size_bin,
    with_referring_expressions,
)
from tests.bench.formats import VHR10_GT as GT
from tests.bench.formats import write_vhr10

def test_ground_truth_lines_with_spaces_and_blank_lines():
    boxes = parse_ground_truth(GT["010"])
    assert boxes == [([10.0, 10.0, 40.0, 50.0], 1), ([68.0, 116.0, 170.0, 161.0], 3), ([200.0, 20.0, 230.0, 60.0], 3)]


@pytest.mark.parametrize("line, problem", [
    ("(10,10),(40,50)", "line 1: expected"),
    ("(10,10),(40,50),11", "class 11 is not in 1-10"),
    ("(40,10),(10,50),2", "empty box"),
    ("10,10,40,50,2", "expected '(x1,y1),(x2,y2),class'"),
])
def test_bad_ground_truth_lines_name_file_and_line(line, problem):
    with pytest.raises(ValueError, match="123.txt line 2") as e:
        parse_ground_truth(f"(1,1),(5,5),1\n{line}\n", "NWPU VHR-10 123.txt")
    assert problem.split(": ")[-1] in str(e.value)


def test_reader_samples_and_whole_image_split(tmp_path):
    root = write_vhr10(tmp_path)
    every = NWPUVHR10(root, "all")
    assert len(every) == 7 and every.split == "all"
    s = every[1]
    assert s["image_id"] == "010" and s["box"] == [68.0, 116.0, 170.0, 161.0] and s["label"] == 2
    assert s["class_name"] == s["prompt_name"] == "storage tank" and (s["width"], s["height"]) == (256, 256)
    assert s["object_index"] == 1 and s["size_bin"] == "32-96 px"
    dev, train = NWPUVHR10(root, "dev"), NWPUVHR10(root, "train")
    dev_ids, train_ids = {x["image_id"] for x in dev.samples}, {x["image_id"] for x in train.samples}
    assert dev_ids == {i for i in GT if is_dev_image(i)} and dev_ids and train_ids
    assert not dev_ids & train_ids and dev_ids | train_ids == set(GT)  # whole images, every image on one side
    assert len(dev) + len(train) == len(every)


def test_split_depends_only_on_the_image_id(tmp_path):
    ids = [f"{i:03d}" for i in range(1, 1001)]
    dev = [i for i in ids if is_dev_image(i)]
    assert abs(len(dev) / len(ids) - DEV_FRACTION) < 0.04
    assert all(is_dev_image(i) == (int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) < DEV_FRACTION * 2**32)
               for i in ids[:50])
    # the same image is dev whatever else the folder holds
    small = write_vhr10(tmp_path / "a", {k: GT[k] for k in ("010", "020")})
    assert {x["image_id"] for x in NWPUVHR10(small, "dev").samples} == {"010"}


def test_without_image_set_every_ground_truth_file_is_read(tmp_path):
    root = write_vhr10(tmp_path, listed=False)
    assert {x["image_id"] for x in NWPUVHR10(root, "all").samples} == set(GT)


def test_missing_parts_are_reported(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="positive_image_set"):
        NWPUVHR10(tmp_path, "all")
    root = write_vhr10(tmp_path / "r")
    (root / "ground_truth" / "020.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="020.txt"):
        NWPUVHR10(root, "all")


def test_bad_line_in_a_release_names_the_file(tmp_path):
    root = write_vhr10(tmp_path, {**GT, "020": "(0,0),(100,100),seven\n"})
    with pytest.raises(ValueError, match="020.txt line 1"):
        NWPUVHR10(root, "all")


@pytest.mark.parametrize("w, h, expected", [(31, 31, "<32 px"), (32, 32, "32-96 px"), (16, 64, "32-96 px"),
                                            (95, 95, "32-96 px"), (96, 96, ">96 px"), (300, 20, "32-96 px")])
def test_size_bins_by_sqrt_area(w, h, expected):
    assert size_bin([10, 10, 10 + w, 10 + h]) == expected


def _obj(box, name="storage tank", image_id="1", w=300, h=300):
    return {"box": box, "class_name": name, "image_id": image_id, "width": w, "height": h}


def test_class_name_where_unique_else_position_phrases():
    plane = _obj([10, 10, 40, 40], "airplane")
    assert referring_expression(plane, [plane]) == "the airplane"
    # three tanks in a row: the ends by left/right, the middle one by its grid cell
    row = [_obj([20, 140, 40, 160]), _obj([140, 140, 160, 160]), _obj([260, 140, 280, 160])]
    assert [referring_expression(o, row) for o in row] == [
        "the leftmost storage tank", "the storage tank in the centre", "the rightmost storage tank"]
    col = [_obj([140, 20, 160, 40]), _obj([140, 260, 160, 280])]
    assert [referring_expression(o, col) for o in col] == ["the topmost storage tank", "the bottommost storage tank"]
    # not far enough apart for "leftmost" (margin 5% of 300 px), in one cell, sizes differ by 4x in area
    close = [_obj([20, 20, 60, 60]), _obj([30, 30, 50, 50])]
    assert [referring_expression(o, close) for o in close] == ["the largest storage tank", "the smallest storage tank"]
    # two equal tanks side by side, centres 5 px apart: no phrase singles either out
    twins = [_obj([20, 20, 40, 40]), _obj([25, 22, 45, 42])]
    assert [referring_expression(o, twins) for o in twins] == [None, None]


def test_cell_phrase_when_no_extreme_and_size_is_unhelpful():
    # top-right tank is neither leftmost/rightmost/topmost/bottommost by the margin, but alone in its cell
    objs = [_obj([240, 40, 260, 60]), _obj([245, 240, 265, 260]), _obj([120, 38, 140, 58]), _obj([243, 140, 263, 160])]
    assert referring_expression(objs[3], objs) == "the storage tank at the right"
    assert referring_expression(objs[0], objs) == "the storage tank at the top right"


def test_with_referring_expressions_groups_by_image_and_class():
    a = _obj([20, 20, 40, 40], image_id="x")
    b = _obj([200, 200, 220, 220], image_id="x")
    c = _obj([20, 20, 40, 40], image_id="y")
    d = _obj([100, 100, 120, 120], "vehicle", image_id="x")
    out = with_referring_expressions([a, b, c, d])
    assert [o["expression"] for o in out] == ["the leftmost storage tank", "the rightmost storage tank",
                                             "the storage tank", "the vehicle"]


@pytest.mark.shared_data
def test_real_release_split(shared_data):
    every = NWPUVHR10(shared_data / "nwpu_vhr10", "all")
    dev = NWPUVHR10(shared_data / "nwpu_vhr10", "dev")
    assert len(every) == 2790 and len({s["image_id"] for s in every.samples}) == 454
    n_dev = len({s["image_id"] for s in dev.samples})
    assert 0.15 < n_dev / 454 < 0.25
    counts = {c: sum(s["class_name"] == c for s in every.samples) for c in NWPUVHR10.class_names}
    assert counts["airplane"] == 536 and counts["bridge"] == 91 and counts["vehicle"] == 433
