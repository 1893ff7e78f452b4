from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geovec.inputs import GeoVecInputError, Item, parse_item, parse_items
from tests.conftest import scene


@pytest.fixture
def jpg(tmp_path) -> Path:
    p = tmp_path / "a.jpg"
    Image.fromarray(scene(0, 100)).save(p)
    return p


def error_of(raw, index=0) -> GeoVecInputError:
    with pytest.raises(GeoVecInputError) as e:
        parse_items([Item(text="ok", order=("text",))] * index + [raw])
    assert e.value.index == index
    assert f"item {index}" in str(e.value)
    return e.value


def test_plain_values_become_items(jpg):
    assert parse_item("a harbour").order == ("text",)
    assert parse_item(jpg).image == jpg
    assert parse_item(str(jpg)).order == ("image",)  # a string naming an existing image file is an image
    assert parse_item("scene.tif is missing").order == ("text",)
    assert parse_item(scene(1, 32)).order == ("image",)
    assert parse_item(Image.fromarray(scene(1, 32))).order == ("image",)


def test_dict_keeps_the_users_modality_order(jpg):
    it = parse_item({"text": "tanks", "lat": 1.0, "lon": 2.0, "image": jpg, "box": [1, 2, 30, 40]})
    assert it.order == ("text", "location", "image", "box")
    assert it.boxes == ((1.0, 2.0, 30.0, 40.0),)
    assert (it.lat, it.lon) == (1.0, 2.0)


def test_boxes_list(jpg):
    it = parse_item({"image": jpg, "boxes": [[0, 0, 10, 10], [50, 50, 100, 100]]})
    assert len(it.boxes) == 2


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"text": "x", "colour": "red"}, "unknown key"),
        ({}, "empty item"),
        ("   ", "empty"),
        (None, "empty item"),
        ({"text": ""}, "text is empty"),
        ({"text": 3}, "text must be a string"),
        ({"lat": 91.0, "lon": 0.0}, "lat 91.0 is out of range"),
        ({"lat": -10.0, "lon": 181.0}, "lon 181.0 is out of range"),
        ({"lat": 10.0}, "both 'lat' and 'lon'"),
        ({"lat": float("nan"), "lon": 0.0}, "finite"),
        ({"lat": "52N", "lon": 0.0}, "lat must be a number"),
        ({"lat": True, "lon": 0.0}, "lat must be a number"),
        ({"text": "x", "box": [0, 0, 5, 5]}, "needs an image"),
        ({"image": "/no/such/file.jpg"}, "does not exist"),
        ({"image": 3.5}, "must be a PIL image"),
        ({"image": np.zeros((0, 4, 3), np.uint8)}, "non-empty"),
        ({"text": "x", "instruction": ""}, "instruction"),
        (object(), "cannot embed"),
    ],
)
def test_bad_items_name_index_and_problem(raw, words):
    err = error_of(raw, index=2)
    assert words in str(err)


def test_box_checks(jpg):
    assert "outside the 100x100 image" in str(error_of({"image": jpg, "box": [10, 10, 120, 50]}))
    assert "outside" in str(error_of({"image": jpg, "box": [-1, 10, 20, 50]}))
    assert "degenerate" in str(error_of({"image": jpg, "box": [10, 10, 10, 50]}))
    assert "degenerate" in str(error_of({"image": jpg, "box": [30, 10, 20, 50]}))
    assert "4 numbers" in str(error_of({"image": jpg, "box": [1, 2, 3]}))
    assert "either 'box' or 'boxes'" in str(error_of({"image": jpg, "box": [0, 0, 1, 1], "boxes": [[0, 0, 1, 1]]}))
    assert "outside the 32x32" in str(error_of({"image": scene(0, 32), "box": [0, 0, 33, 10]}))


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    err = error_of({"image": bad, "box": [0, 0, 1, 1]}, index=1)
    assert "broken.png" in str(err) and "cannot decode" in str(err)


def test_list_shaped_calls():
    with pytest.raises(GeoVecInputError, match="empty list"):
        parse_items([])
    with pytest.raises(GeoVecInputError, match="wrap a single item"):
        parse_items("just text")


def test_content_key_tracks_content(jpg, tmp_path):
    a = parse_item({"image": jpg, "text": "x"})
    assert a.content_key() == parse_item({"image": jpg, "text": "x"}).content_key()
    assert a.content_key() != parse_item({"image": jpg, "text": "y"}).content_key()
    other = tmp_path / "b.jpg"
    Image.fromarray(scene(5, 100)).save(other)
    assert a.content_key() != parse_item({"image": other, "text": "x"}).content_key()
    assert a.content_key() != a.with_instruction("Find it.").content_key()
