"""Training sources aimed outside RSICD: sensor-simulated views, NWPU VHR-10 region pairs (train part only),
paraphrased VQA; on generated fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from geovec.data import NWPUVHR10
from geovec.train.converters import sensor_view_examples, vhr10_examples
from geovec.train.sensor_sim import SensorParams, apply, draw_params, render_views, simulate
from tests.bench.formats import write_outside_data

from .fixtures import write_dev_data


def _scene(size=224) -> Image.Image:
    """Sharp, saturated structure: 4 px stripes of red and blue on green."""
    a = np.zeros((size, size, 3), dtype=np.uint8)
    a[..., 1] = 160
    a[:, ::8, 0] = 255
    a[::8, :, 2] = 255
    return Image.fromarray(a)


def _detail(img: Image.Image) -> float:
    a = np.asarray(img.convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(a, axis=1)).mean())


def test_coarser_ground_sampling_removes_detail_and_keeps_size():
    img = _scene()
    base = dict(blur_sigma=0.0, contrast=1.0, saturation=1.0, haze=0.0, gamma=1.0, gain=1.0, jpeg_quality=95)
    fine = apply(img, SensorParams(gsd_m=1.0, factor=1.0, **base))
    coarse = apply(img, SensorParams(gsd_m=10.0, factor=10.0, **base))
    assert fine.size == coarse.size == img.size
    assert _detail(coarse) < 0.5 * _detail(fine)


def test_radiometry_lowers_contrast_and_saturation():
    img = _scene()
    p = SensorParams(gsd_m=1.0, factor=1.0, blur_sigma=0.0, contrast=0.6, saturation=0.5, haze=20.0, gamma=1.0,
                     gain=1.0, jpeg_quality=95)
    out = np.asarray(apply(img, p), dtype=np.float32)
    src = np.asarray(img, dtype=np.float32)
    assert out.std() < src.std()
    assert (out.max(axis=2) - out.min(axis=2)).mean() < (src.max(axis=2) - src.min(axis=2)).mean()


def test_draws_are_seeded_and_in_range():
    a = [draw_params(np.random.default_rng(s)) for s in range(300)]
    gsd = np.array([p.gsd_m for p in a])
    assert 0.5 <= gsd.min() and gsd.max() <= 30.0 and np.median(gsd) < 10  # log-uniform: half below ~3.9 m
    assert all(p.factor >= 1 and 40 <= p.jpeg_quality <= 95 for p in a)
    img = _scene(64)
    x1, p1 = simulate(img, 0, "a.jpg")
    x2, p2 = simulate(img, 0, "a.jpg")
    x3, p3 = simulate(img, 0, "b.jpg")
    assert p1 == p2 and np.array_equal(np.asarray(x1), np.asarray(x2)) and p1 != p3
    with pytest.raises(ValueError, match="gsd_range"):
        draw_params(np.random.default_rng(0), (5.0, 1.0))


def test_render_views_writes_files_once(tmp_path):
    src = tmp_path / "src" / "x_1.jpg"
    src.parent.mkdir()
    _scene(48).save(src)
    rows = render_views([src], tmp_path / "out", views=2, seed=1)
    assert [r["image"].rsplit("/", 1)[1] for r in rows] == ["x_1-s0.jpg", "x_1-s1.jpg"]
    assert all(Image.open(r["image"]).size == (48, 48) for r in rows)
    mtime = (tmp_path / "out" / "x_1-s0.jpg").stat().st_mtime_ns
    again = render_views([src], tmp_path / "out", views=2, seed=1)
    assert again == rows and (tmp_path / "out" / "x_1-s0.jpg").stat().st_mtime_ns == mtime


def test_vhr10_pairs_come_from_the_train_part_only(tmp_path):
    root = write_outside_data(tmp_path)
    train = NWPUVHR10(root / "nwpu_vhr10", "train").samples
    ex = list(vhr10_examples(train))
    cls = [e for e in ex if e.group and e.group.endswith(":class")]
    assert len(cls) == len(train)
    e = cls[0]
    assert e.query["box"] == train[0]["box"] and {"text": train[0]["class_name"]} in e.positives
    assert len(e.negatives) == 9 and all(train[0]["class_name"] not in n["text"] for n in e.negatives)
    assert any(e.query.get("text", "").startswith("the ") for e in ex)  # phrase -> box pairs
    dev = NWPUVHR10(root / "nwpu_vhr10", "dev").samples
    with pytest.raises(ValueError, match="dev part"):
        list(vhr10_examples(dev))


def test_sensor_view_examples_and_outside_sources(tmp_path):
    from geovec.train.mixture import build_outside_sources

    root = write_outside_data(write_dev_data(tmp_path / "data"))
    m = build_outside_sources(root, tmp_path / "out", sensor_images=3, sensor_views=1)
    assert set(m["files"]) == {"vqa_paraphrased", "sensor", "vhr10"} and m["sensor_images"] == 3
    rows = [json.loads(x) for x in open(m["files"]["sensor"])]
    cls = [r for r in rows if r["task"] == "classification"]
    assert len(cls) == 3 and all("/out/sensor/" in r["query"]["image"] for r in cls)
    assert all(r["query"]["image"] in m["images"] for r in rows)
    vhr = [json.loads(x) for x in open(m["files"]["vhr10"])]
    assert vhr and all(not any(f"/{i}.jpg" in r["query"]["image"] for i in ("010", "015", "023", "031")) for r in vhr)
    vqa = [json.loads(x) for x in open(m["files"]["vqa_paraphrased"])]
    assert vqa and all(r["task"] == "vqa" for r in vqa)
    with pytest.raises(KeyError):
        list(sensor_view_examples([{"source": str(tmp_path / "nope.jpg"), "image": "x.jpg"}], []))
