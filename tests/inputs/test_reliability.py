"""Regression tests of issue 12 for reading inputs: decompression bombs (5), pixel limits (6), all-NaN rasters (7),
GDAL formats by content (2), and values no tokenizer can take."""

import numpy as np
import pytest
from PIL import Image

from geovec.inputs import GeoVecInputError, parse_item, read_image
from geovec.inputs.georef import read_georef
from geovec.inputs.policy import DEFAULT_MAX_IMAGE_MP, SAFE_DRIVERS, read_policy, reading, set_read_policy
from geovec.inputs.raster import image_size, read_tiff
from tests.conftest import scene
from tests.hostile import (write_bomb, write_nan_tiff, write_sparse_big_tiff, write_tiff, write_vrt_as_tif)
from tests.index.geovec_fake_model import FakeGeoModel


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(scene(1, 40)).save(good)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = write_tiff(outside / "secret.tif", np.full((1, 8, 8), 77, np.uint8))
    return {"good": good, "bomb": write_bomb(tmp_path / "bomb.png"), "nan": write_nan_tiff(tmp_path / "nan.tif"),
            "vrt": write_vrt_as_tif(tmp_path / "evil.tif", secret), "big": write_sparse_big_tiff(tmp_path / "big.tif")}


# --- 5: decompression bombs are bad items, not crashes -------------------------------------------------------
def test_bomb_is_an_input_error_everywhere(files):
    for call in (lambda: read_image(files["bomb"]), lambda: image_size(files["bomb"]),
                 lambda: parse_item({"image": files["bomb"], "box": [0, 0, 5, 5]})):
        with pytest.raises(GeoVecInputError, match="bomb.png.*too large"):
            call()


def test_bomb_in_encode_and_encode_partial(files):
    model, bomb = FakeGeoModel(), files["bomb"]
    with pytest.raises(GeoVecInputError, match=r"item 1 \(.*bomb.png\)"):
        model.encode(["fine", bomb])
    emb, errors = model.encode_partial(["fine", bomb, "also fine"])
    assert set(errors) == {1} and "bomb.png" in errors[1]
    assert np.isfinite(emb[[0, 2]]).all() and np.isnan(emb[1]).all()


# --- 6: pixel limits ------------------------------------------------------------------------------------------
def test_whole_read_of_a_huge_tiff_is_refused_before_decoding(files):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(GeoVecInputError, match="20000x20000 = 400 megapixels, above the limit of 100"):
        read_image(files["big"])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was read whole
    # windows (chips) of it are fine: the limit is on what is read
    assert read_tiff(files["big"], window=(0, 0, 64, 64)).pixels[0, 0].tolist() == [7, 7, 7]


def test_pixel_limit_is_configurable(files):
    assert read_policy().max_pixels == int(DEFAULT_MAX_IMAGE_MP * 1e6)
    with pytest.raises(GeoVecInputError, match="above the limit of 0.001"):
        read_image(files["good"], max_pixels=1000)  # 40x40 = 1600
    previous = set_read_policy(max_image_mp=0.001)
    try:
        with pytest.raises(GeoVecInputError, match="megapixels"):
            read_image(files["good"])
        with pytest.raises(GeoVecInputError, match="megapixels"):
            FakeGeoModel().encode([files["good"]])
        assert read_image(scene(1, 40)).width == 40  # arrays are already in memory: no limit
    finally:
        set_read_policy(max_image_mp=previous.max_pixels / 1e6 if previous.max_pixels else 0)
    assert read_policy() == previous
    with reading(previous.__class__(max_pixels=None)):
        assert read_policy().max_pixels is None
    assert read_policy() == previous


def test_env_var_sets_the_default(monkeypatch):
    from geovec.inputs import policy  # the module reads the variable once, at import

    monkeypatch.setenv("GEOVEC_MAX_IMAGE_MP", "2.5")
    assert policy.policy_from_env().max_pixels == 2_500_000
    monkeypatch.setenv("GEOVEC_MAX_IMAGE_MP", "0")
    assert policy.policy_from_env().max_pixels is None


# --- 7: all-NaN rasters -----------------------------------------------------------------------------------------
def test_all_nan_is_an_error_not_black(files):
    with pytest.raises(GeoVecInputError, match="nan.tif.*no valid pixel"):
        read_image(files["nan"])
    with pytest.raises(GeoVecInputError, match="no valid pixel"):
        read_image(np.full((8, 8, 3), np.nan, np.float32))
    emb, errors = FakeGeoModel().encode_partial([files["nan"], "text"])
    assert list(errors) == [0] and "no valid pixel" in errors[0] and np.isnan(emb[0]).all()
    # partly NaN is fine: NaN pixels take the low end of the stretch
    part = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    part[:4] = np.nan
    assert read_image(part).pixels.shape == (8, 8, 3)


# --- 2: formats by content ------------------------------------------------------------------------------------
def test_vrt_named_tif_is_refused(files):
    for call in (lambda: read_image(files["vrt"]), lambda: read_tiff(files["vrt"]), lambda: image_size(files["vrt"]),
                 lambda: read_georef(files["vrt"])):
        with pytest.raises(GeoVecInputError, match="evil.tif.*VRT"):
            call()
    # opting in (trusted files only) opens it, and shows why it is refused by default: it reads another file
    assert read_image(files["vrt"], drivers=None).pixels[0, 0].tolist() == [77, 77, 77]


def test_png_named_tif_opens_with_its_own_driver(tmp_path):
    p = tmp_path / "really_a_png.tif"
    Image.fromarray(scene(2, 24)).save(p, "PNG")
    assert read_image(p).pixels.shape == (24, 24, 3)
    with pytest.raises(GeoVecInputError, match="PNG content; only GTiff"):
        read_image(p, drivers=("GTiff",))
    assert "GTiff" in SAFE_DRIVERS and "VRT" not in SAFE_DRIVERS


def test_sixteen_bit_png_is_stretched_not_clipped(tmp_path):
    p = tmp_path / "deep.png"
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 10 + 1000)).save(p)
    px = read_image(p).pixels
    assert px.min() == 0 and px.max() == 255 and len(np.unique(px)) > 50


# --- text no tokenizer can take -----------------------------------------------------------------------------
@pytest.mark.parametrize("raw,words", [
    ("lone \ud800 surrogate", "not valid Unicode"),
    ({"text": "a", "instruction": "\udfff"}, "instruction is not valid Unicode"),
    ({"image": np.zeros((8, 8, 3), np.uint8), "boxes": 5}, "'boxes' must be a list"),
    ({"lat": 10**400, "lon": 0}, "lat must be finite"),
    ({"image": "x" * 5000 + ".png"}, "image"),
])
def test_values_that_used_to_escape_as_other_exceptions(raw, words):
    with pytest.raises(GeoVecInputError, match=words):
        parse_item(raw)


def test_env_var_names_the_drivers_and_reading_passes_the_policy_to_workers(monkeypatch):
    import os

    from geovec.inputs import policy

    monkeypatch.setenv("GEOVEC_RASTER_DRIVERS", "any")
    assert policy.policy_from_env().drivers is None
    monkeypatch.setenv("GEOVEC_RASTER_DRIVERS", "GTiff, PNG")
    assert policy.policy_from_env().drivers == ("GTiff", "PNG")
    monkeypatch.delenv("GEOVEC_RASTER_DRIVERS")
    monkeypatch.delenv("GEOVEC_MAX_IMAGE_MP", raising=False)
    with reading(policy.ReadPolicy(max_pixels=5_000_000, drivers=None)):
        assert os.environ["GEOVEC_MAX_IMAGE_MP"] == "5.0" and os.environ["GEOVEC_RASTER_DRIVERS"] == "any"
        assert policy.policy_from_env() == read_policy()  # what a worker process started here would read
    assert "GEOVEC_MAX_IMAGE_MP" not in os.environ and "GEOVEC_RASTER_DRIVERS" not in os.environ


def test_decoded_image_cache_respects_a_tightened_pixel_limit(model, tmp_path):
    """A file decoded under a loose limit is read again (and refused) once the limit is tightened."""
    from PIL import Image

    from geovec.inputs import GeoVecInputError
    from geovec.inputs.policy import ReadPolicy, read_policy, reading

    path = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), (90, 120, 60)).save(path)
    model.encode([{"image": str(path)}])  # decoded and kept in the model's small decode cache
    with reading(ReadPolicy(max_pixels=1_000_000, drivers=read_policy().drivers)):
        with pytest.raises(GeoVecInputError, match="megapixel"):
            model.encode([{"image": str(path)}])
