"""Property-based tests (hypothesis) of parse_item / read_image: for arbitrary JSON values, numbers (NaN, inf,
huge), strings, paths and byte blobs as images, every outcome is an item / an embedding or a GeoVecInputError
naming the item, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from geovec.inputs import ALLOWED_KEYS, GeoVecInputError, Item, parse_item, read_image
from tests.conftest import scene
from tests.hostile import bomb_png, write_nan_tiff, write_tiff, write_vrt_as_tif
from tests.index.geovec_fake_model import FakeGeoModel

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMBERS = (st.integers(min_value=-(10**30), max_value=10**30) | st.integers(min_value=10**300, max_value=10**310)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -0.0, 1e309, -1e309, 90.0, 180.0]))
TEXT = st.text(max_size=40) | st.sampled_from(["", "  ", "\ud800", "a\x00b", "x" * 5000 + ".png", "../../etc/passwd"])
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Files a hostile caller might name: good, corrupt, bomb, VRT-as-TIFF, all-NaN, a folder, missing."""
    d = tmp_path_factory.mktemp("hostile")
    Image.fromarray(scene(3, 32)).save(d / "good.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (d / "bomb.png").write_bytes(bomb_png())
    write_vrt_as_tif(d / "evil.tif", write_tiff(d / "secret.tif", np.full((1, 8, 8), 9, np.uint8)))
    write_nan_tiff(d / "nan.tif")
    (d / "folder.png").mkdir()
    names = ["good.png", "corrupt.jpg", "bomb.png", "evil.tif", "secret.tif", "nan.tif", "folder.png", "missing.tif"]
    return [str(d / n) for n in names]


def item_values(paths):
    image = (st.sampled_from(paths) | JSON
             | hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.float32, np.int32, np.bool_]),
                          hnp.array_shapes(min_dims=0, max_dims=4, max_side=6)))
    value = JSON | image
    keyed = st.dictionaries(st.sampled_from(ALLOWED_KEYS + ("colour",)), value, max_size=5)
    with_image = st.fixed_dictionaries({"image": image}, optional={
        "box": JSON | st.lists(NUMBERS, min_size=4, max_size=4), "text": TEXT, "lat": NUMBERS, "lon": NUMBERS,
        "boxes": JSON, "instruction": TEXT})
    return JSON | keyed | with_image | st.sampled_from(paths) | image


def check_outcome(fn, index=None):
    try:
        return fn()
    except GeoVecInputError as e:
        assert str(e).startswith("item" if index is None else f"item {index}"), str(e)
        return None


def test_parse_item_and_read_image_never_raise_anything_else(paths):
    @SETTINGS
    @given(item_values(paths), st.integers(0, 9))
    def prop(raw, index):
        item = check_outcome(lambda: parse_item(raw, index), index)
        if item is not None:
            assert isinstance(item, Item) and item.order
            if item.image is not None:
                img = check_outcome(lambda: read_image(item.image))
                if img is not None:
                    assert img.pixels.dtype == np.uint8 and img.pixels.ndim == 3 and img.pixels.shape[2] == 3

    prop()


def test_encode_partial_gives_a_vector_or_an_error_per_item(paths):
    model = FakeGeoModel()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(item_values(paths), min_size=1, max_size=4))
    def prop(raws):
        emb, errors = model.encode_partial(raws)
        assert emb.shape == (len(raws), model.embed_dim)
        for i in range(len(raws)):
            if i in errors:
                assert errors[i].startswith(f"item {i}") and np.isnan(emb[i]).all()
            else:
                assert np.isfinite(emb[i]).all()

    prop()


@SETTINGS
@given(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBP",
                        b"BM", b"GIF89a", b"<VRTDataset>", b"%!PS-Adobe-3.0 EPSF"]),
       st.binary(max_size=300), st.sampled_from([".png", ".jpg", ".tif", ".webp", ".bmp"]))
def test_byte_blobs_as_image_files(tmp_path_factory, magic, tail, suffix):
    p = tmp_path_factory.getbasetemp() / f"blob{suffix}"
    p.write_bytes(magic + tail)
    img = check_outcome(lambda: read_image(p))
    if img is not None:
        assert img.pixels.dtype == np.uint8 and img.pixels.shape[2] == 3


@SETTINGS
@given(st.binary(min_size=0, max_size=400))
def test_truncated_and_mutated_real_images(data):
    import io

    buf = io.BytesIO()
    Image.fromarray(scene(4, 16)).save(buf, "PNG")
    real = buf.getvalue()
    cut = real[: len(data) % (len(real) + 1)] + data[:20]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.png"
        p.write_bytes(cut)
        check_outcome(lambda: read_image(p))
