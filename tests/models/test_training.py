"""Both new backbones train through the project's trainer (``geovec.train``) unchanged: a short run on a
handful of pairs lowers the contrastive loss, and the saved model loads back through ``geovec.load_model``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import geovec
from geovec.models.config import GeoVecConfig
from geovec.models.registry import build_untrained

train = pytest.importorskip("geovec.train.trainer", reason="the training layer (geovec.train) is not installed")
from geovec.train.config import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def pairs_jsonl(tmp_path_factory, scene_png):
    """8 examples over all input kinds: image<->caption, box->caption, location->text."""
    from PIL import Image

    d = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    words = ["harbor", "runway", "forest", "farmland", "stadium", "bridge", "desert", "river"]
    lines = []
    for i, w in enumerate(words):
        img = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
        img[:, : 12 * (i + 1)] = 30 * i
        Image.fromarray(img).save(d / f"{w}.png")
        if i % 4 == 0:
            ex = {"task": "retrieval", "query": {"image": f"{w}.png"}, "positive": {"text": f"a {w} seen from above"}}
        elif i % 4 == 1:
            ex = {"task": "retrieval", "query": {"text": f"a {w} seen from above"}, "positive": {"image": f"{w}.png"}}
        elif i % 4 == 2:
            ex = {"task": "region", "query": {"image": f"{w}.png", "box": [0, 0, 48, 32]}, "positive": {"text": f"the {w}"}}
        else:
            ex = {"task": "geo", "query": {"lat": -40.0 + 10 * i, "lon": 5.0 * i}, "positive": {"text": f"a {w} place"}}
        lines.append(json.dumps(ex))
    path = d / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(model, jsonl, out, steps=12, **kw):
    cfg = TrainConfig.from_dict(dict(base_model="unused", data=[{"path": str(jsonl)}], output_dir=str(out),
                                     batch_size=8, max_steps=steps, warmup_steps=1, save_every=0, log_every=1,
                                     temperature=0.05, learn_temperature=False, **kw))
    trainer = train.Trainer(cfg, model=model)
    losses = [trainer.train_step()["loss"] for _ in range(steps)]
    return trainer, losses


def test_smol_trains_through_the_trainer(tiny_smol_dir, pairs_jsonl, tmp_path):
    cfg = GeoVecConfig(name="smol-train-test", backbone="smol", backbone_path=str(tiny_smol_dir), embed_dim=32,
                       pooling="last", image_grid=2)
    model = build_untrained(cfg, seed=0)
    trainer, losses = _run(model, pairs_jsonl, tmp_path, lr=3e-3, encoder_lr=3e-3,
                           lora={"r": 4, "alpha": 16, "targets": ["q_proj", "v_proj"]})
    assert np.mean(losses[-3:]) < losses[0] - 0.1, losses
    saved = trainer.save_model(tmp_path / "model")
    items = [{"text": "a harbor seen from above"}, {"lat": 10.0, "lon": 5.0}]
    np.testing.assert_allclose(geovec.load_model(saved).encode(items), model.encode(items), atol=1e-4)


def test_qwen2vl_trains_through_the_trainer(tiny_qwen2vl_dir, pairs_jsonl, tmp_path):
    from geovec.models.qwen2vl import Qwen2VLEmbedder, qwen_config

    model = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, max_pixels=56 * 56, device="cpu"))
    trainer, losses = _run(model, pairs_jsonl, tmp_path, lr=3e-3, encoder_lr=3e-3, chunk_size=3)  # GradCache
    assert np.mean(losses[-3:]) < losses[0] - 0.1, losses
    saved = trainer.save_model(tmp_path / "model")
    items = [{"text": "a harbor seen from above"}, {"lat": 10.0, "lon": 5.0}]
    np.testing.assert_allclose(geovec.load_model(saved).encode(items), model.encode(items), atol=1e-4)
