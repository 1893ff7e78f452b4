"""The encode contract on the bundled default model."""

import numpy as np
import pytest
import torch
from PIL import Image
from rasterio.transform import from_origin

import geovec
from geovec.inputs import GeoVecInputError
from tests.conftest import scene, write_geotiff


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def mixed_items(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    jpg = d / "a.jpg"
    Image.fromarray(scene(0)).save(jpg, quality=92)
    tif = write_geotiff(d / "g.tif", "EPSG:32631", from_origin(600000, 5700000, 10, 10),
                        np.moveaxis(scene(4, 256), -1, 0))
    return [
        "storage tanks next to a harbour",
        jpg,
        {"image": jpg, "box": [20, 30, 120, 140]},
        {"lat": 52.1, "lon": 5.2},
        {"image": tif, "text": "farmland", "box": [0, 0, 128, 128], "lat": 51.4, "lon": 4.5},
        Image.fromarray(scene(7, 300)),
        scene(8, 160),
    ]


def test_shapes_dtype_and_norm(model, mixed_items):
    E = model.encode(mixed_items)
    assert E.shape == (len(mixed_items), model.embed_dim) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(E).all()
    raw = model.encode(mixed_items, normalize=False)
    if model.config.architecture == "dual-path":  # its halves are unit vectors by construction
        np.testing.assert_allclose(raw, E, atol=1e-5)
    else:
        assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_deterministic(model, mixed_items):
    assert np.array_equal(model.encode(mixed_items), model.encode(mixed_items))


def test_encode_runs_in_eval_mode_and_restores_each_modules_mode(model, mixed_items):
    ref = model.encode(mixed_items[:3])
    dropout = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Dropout))
    model.backbone.train()  # a half in training mode (its dropout active) must not leak into embeddings
    try:
        got = model.encode(mixed_items[:3])
        assert np.allclose(got, ref, atol=1e-6)
        assert model.backbone.training and dropout.training and not model.training  # each module's own mode back
    finally:
        model.backbone.eval()
    model.train()
    try:
        assert np.allclose(model.encode(mixed_items[:3]), ref, atol=1e-6)
        assert all(m.training for m in model.modules())
    finally:
        model.eval()


def test_batch_invariance(model, mixed_items):
    together = model.encode(mixed_items, batch_size=32)
    alone = np.concatenate([model.encode([it]) for it in mixed_items])
    shuffled_order = [4, 0, 6, 2, 5, 1, 3]
    shuffled = model.encode([mixed_items[i] for i in shuffled_order], batch_size=3)
    assert np.abs(together - alone).max() < 1e-4
    assert np.abs(together[shuffled_order] - shuffled).max() < 1e-4


def test_box_sensitivity(model, mixed_items):
    jpg = mixed_items[1]
    a, b, c = model.encode([{"image": jpg, "box": [0, 0, 100, 100]}, {"image": jpg, "box": [120, 120, 224, 224]},
                            {"image": jpg, "box": [0, 0, 100, 100]}])
    assert cos(a, c) > 0.9999
    assert cos(a, b) < 0.98, "different boxes on one image must embed clearly differently"
    plain = model.encode([jpg])[0]
    assert cos(a, plain) < 0.999


def test_location_sensitivity(model):
    amsterdam, utrecht, sydney, again = model.encode(
        [{"lat": 52.37, "lon": 4.90}, {"lat": 52.09, "lon": 5.12}, {"lat": -33.87, "lon": 151.21}, {"lat": 52.37, "lon": 4.90}])
    assert cos(amsterdam, again) > 0.9999
    assert cos(amsterdam, sydney) < 0.99  # trained r5: 0.973 (untrained architecture: 0.997)
    assert cos(amsterdam, utrecht) > 0.5
    # nearby places are closer than far ones: a point ~30 km away beats a random other place almost always
    # (one pair of the three above, Amsterdam-Utrecht vs Amsterdam-Sydney, is a near tie for the r8 default)
    rng = np.random.default_rng(0)
    lat = np.degrees(np.arcsin(rng.uniform(-0.9, 0.95, 200)))
    lon = rng.uniform(-180, 180, 200)
    near_lat, near_lon = lat + rng.normal(0, 0.3, 200), lon + rng.normal(0, 0.3, 200)
    E = model.encode([{"lat": float(a), "lon": float(b)} for a, b in zip(np.r_[lat, near_lat], np.r_[lon, near_lon])])
    base, near, other = E[:200], E[200:], np.roll(E[:200], 1, axis=0)
    assert np.mean((base * near).sum(1) > (base * other).sum(1)) >= 0.95


def test_instructions(model, mixed_items):
    q = model.encode_query(mixed_items[:2], task="retrieval")
    d = model.encode_document(mixed_items[:2], task="retrieval")
    plain = model.encode(mixed_items[:2])
    assert not np.allclose(q, d) and not np.allclose(q, plain)
    explicit = model.encode_query(mixed_items[:2], task="retrieval", instruction=model.query_instruction("retrieval"))
    assert np.allclose(q, explicit, atol=1e-6)
    other = model.encode_query(mixed_items[:2], task="geo")
    assert not np.allclose(q, other)
    own = model.encode([{"text": "x", "instruction": "Find it."}], instruction="Something else.")
    assert np.allclose(own, model.encode([{"text": "x", "instruction": "Find it."}]), atol=1e-6)
    with pytest.raises(ValueError, match="unknown task"):
        model.encode_query(["x"], task="segmentation")


def test_similarity(model):
    a = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    b = np.array([[3.0, 0.0], [1.0, 1.0]], np.float32)
    assert np.allclose(model.similarity(a, b), [[1.0, 0.70710677], [0.0, 0.70710677]])


def test_errors_name_the_item(model, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\x00" * 20)  # a JPEG header and nothing else
    with pytest.raises(GeoVecInputError) as e:
        model.encode(["fine", "also fine", {"image": bad}])
    assert e.value.index == 2 and "bad.jpg" in str(e.value)
    with pytest.raises(GeoVecInputError, match="item 1: lat 95.0"):
        model.encode(["ok", {"lat": 95.0, "lon": 0.0}])


def test_encode_partial_keeps_going(model, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    E, errors = model.encode_partial(["a port", {"image": bad}, {"lat": 1.0, "lon": 2.0}, {"text": ""}])
    assert sorted(errors) == [1, 3] and "bad.png" in errors[1] and "item 3" in errors[3]
    assert np.isnan(E[[1, 3]]).all() and np.isfinite(E[[0, 2]]).all()
    assert np.allclose(E[0], model.encode(["a port"])[0], atol=1e-5)


def test_default_model_metadata(model):
    assert model.model_id == "geovec-compact"
    # the dual-path default concatenates its two halves, each config.embed_dim wide
    halves = 2 if model.config.architecture == "dual-path" else 1
    assert model.embed_dim == halves * model.config.embed_dim
    assert set(model.config.query_instructions) == {"classification", "retrieval", "composed", "vqa", "region", "geo"}
    with pytest.raises(FileNotFoundError, match="no geovec model"):
        geovec.load_model("no-such-model")
