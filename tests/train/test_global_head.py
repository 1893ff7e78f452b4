"""geovec.train.global_head: the image head learns new region classes and sensor views while its anchor keeps what
it said; resumes exactly; refuses inconsistent inputs by name."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from geovec.models.global_path import ImageHead
from geovec.train.global_head import HeadAdaptConfig, RegionSet, adapt_image_head, agreement_with

C, D, K = 16, 8, 3


def _head(seed=0):
    torch.manual_seed(seed)
    return ImageHead(C, 32, D)


def _regions(n=60, views=2, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, C)) * 3
    labels = np.arange(n) % K
    feats = centres[labels][:, None, :] + rng.normal(size=(n, views, C)) * 0.3
    texts = F.normalize(torch.from_numpy(rng.normal(size=(2, K, D))).float(), dim=-1)
    return RegionSet(feats.astype(np.float32), labels, texts)


def _anchor(n=200, seed=2):
    return np.random.default_rng(seed).normal(size=(n, C)).astype(np.float32)


def _region_accuracy(head, regions):
    with torch.no_grad():
        e = F.normalize(head(torch.from_numpy(regions.features[:, 0])), dim=-1)
    return float(((e @ regions.class_texts[0].T).argmax(1).numpy() == regions.labels).mean())


def _cfg(**kw):
    base = dict(steps=120, steps_per_epoch=40, lr=3e-3, warmup_steps=5, region_batch=32, anchor_batch=64)
    return HeadAdaptConfig(**{**base, **kw})


def test_regions_are_learned_and_the_anchor_keeps_the_old_outputs():
    regions, anchor = _regions(), _anchor()
    head = _head()
    original = copy.deepcopy(head)
    before = _region_accuracy(head, regions)
    history = adapt_image_head(head, anchor, regions, config=_cfg(), log=None)
    assert len(history) == 3 and history[-1]["steps"] == 120
    assert before < 0.7 and _region_accuracy(head, regions) > 0.95
    kept = agreement_with(head, original, anchor)
    free = _head()
    adapt_image_head(free, anchor, regions, config=_cfg(anchor_weight=0.0), log=None)
    assert kept > 0.9 and kept > agreement_with(free, original, anchor) + 0.05


def test_sensor_views_move_towards_the_clean_images_outputs():
    anchor = _anchor()
    shifted = anchor * 0.3 + np.random.default_rng(5).normal(size=anchor.shape).astype(np.float32) * 0.5
    head = _head()
    original = copy.deepcopy(head)

    def towards_clean(h):
        with torch.no_grad():
            a = F.normalize(original(torch.from_numpy(anchor)), dim=-1)
            return float((F.normalize(h(torch.from_numpy(shifted)), dim=-1) * a).sum(-1).mean())

    start = towards_clean(head)
    adapt_image_head(head, anchor, None, [shifted], _cfg(), log=None)
    assert towards_clean(head) > start + 0.1
    assert agreement_with(head, original, anchor) > 0.8


def test_an_interrupted_run_resumes_to_the_same_head(tmp_path):
    regions, anchor = _regions(), _anchor()
    sensor = anchor + 0.5
    whole = _head()
    adapt_image_head(whole, anchor, regions, [sensor], _cfg(), tmp_path / "whole", log=None)

    class Stop(Exception):
        pass

    def stop_in_epoch_2(msg: str) -> None:
        if "epoch 2/" in msg:
            raise Stop

    cut = _head()
    with pytest.raises(Stop):
        adapt_image_head(cut, anchor, regions, [sensor], _cfg(), tmp_path / "cut", log=stop_in_epoch_2)
    resumed = _head(seed=7)  # other start weights: the checkpoint must replace them
    history = adapt_image_head(resumed, anchor, regions, [sensor], _cfg(), tmp_path / "cut", log=None)
    assert [h["epoch"] for h in history] == [2, 3]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_inconsistent_inputs_are_refused_by_name():
    regions, anchor = _regions(), _anchor()
    with pytest.raises(ValueError, match="sensor view 0 has shape"):
        adapt_image_head(_head(), anchor, regions, [anchor[:10]], _cfg(), log=None)
    with pytest.raises(ValueError, match="nothing to adapt to"):
        adapt_image_head(_head(), anchor, None, [], _cfg(), log=None)
    labels = regions.labels.copy()
    labels[4] = K
    with pytest.raises(ValueError, match="region crop 4 has label 3, but there are 3 class names"):
        RegionSet(regions.features, labels, regions.class_texts)
    with pytest.raises(ValueError, match="60 region crops but 59 labels"):
        RegionSet(regions.features, regions.labels[:59], regions.class_texts)


def test_a_region_file_of_your_own_is_read_and_checked_by_line(tmp_path):
    from PIL import Image

    from geovec.train.global_head import read_region_file

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    good = ['{"image": "a.png", "box": [1, 2, 30, 40], "class": "solar farm"}', "",
            '{"image": "%s", "box": [0, 0, 10.5, 8], "class": "greenhouse"}' % (tmp_path / "a.png")]
    (tmp_path / "boxes.jsonl").write_text("\n".join(good))
    samples, classes = read_region_file(tmp_path / "boxes.jsonl")
    assert classes == ["greenhouse", "solar farm"]
    assert [(s["label"], s["class_name"], s["box"]) for s in samples] == [(1, "solar farm", [1.0, 2.0, 30.0, 40.0]),
                                                                          (0, "greenhouse", [0.0, 0.0, 10.5, 8.0])]
    assert samples[0]["image"] == tmp_path / "a.png"
    for line, message in (('{"image": "a.png", "box": [30, 2, 1, 40], "class": "x"}', "bad.jsonl:2: box must be"),
                          ('{"image": "b.png", "box": [1, 2, 3, 4], "class": "x"}', "bad.jsonl:2: image .*b.png does not exist"),
                          ('{"image": "a.png", "class": "x"}', "bad.jsonl:2: needs the keys image, box and class"),
                          ("not json", "bad.jsonl:2: not valid JSON")):
        (tmp_path / "bad.jsonl").write_text(good[0] + "\n" + line)
        with pytest.raises(ValueError, match=message):
            read_region_file(tmp_path / "bad.jsonl")
    (tmp_path / "one.jsonl").write_text(good[0])
    with pytest.raises(ValueError, match="at least two classes"):
        read_region_file(tmp_path / "one.jsonl")
