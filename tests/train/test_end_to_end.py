"""A tiny real run: the compact model (pretrained towers) trained on fixture images lowers its loss, and the
saved checkpoint loads through ``geovec.load_model`` and retrieves better than the untrained model."""

import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

# colours the towers can tell apart, paired with captions that do not name the colour (the untrained model
# has nothing to match them by)
SCENES = [("red", (200, 30, 30), "an airport with two runways"), ("green", (30, 170, 40), "a harbour full of boats"),
          ("blue", (30, 60, 200), "a dense residential area"), ("yellow", (220, 210, 40), "a stadium next to a road"),
          ("white", (240, 240, 240), "a river crossing farmland"), ("black", (15, 15, 15), "a parking lot with cars")]


@pytest.fixture(scope="session")
def compact_untrained():
    import geovec

    return geovec.load_model("geovec-compact-untrained")


def test_region_pooling_makes_box_items_stand_for_their_region(compact_untrained, tmp_path):
    """region_pooling "regions" pools an (image, box) item over its region tokens only: two boxes on one image
    then differ far more than under whole-sequence pooling, and the image alone is unchanged."""
    m = compact_untrained
    arr = np.random.default_rng(1).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    arr[:112] = (200, 40, 40)  # top half red, bottom half noise
    items = [{"image": arr, "box": [0, 0, 100, 100]}, {"image": arr, "box": [120, 120, 224, 224]}, arr]
    cos = lambda a, b: float(a @ b)
    before = m.config.region_pooling
    try:
        m.config.region_pooling = "all"
        a_all, b_all, img_all = m.encode(items)
        m.config.region_pooling = "regions"
        a_reg, b_reg, img_reg = m.encode(items)
    finally:
        m.config.region_pooling = before
    assert cos(a_reg, b_reg) < cos(a_all, b_all) - 0.05
    assert np.allclose(img_all, img_reg, atol=1e-6)  # items without boxes pool as before


def _fixture(tmp_path):
    from geovec.train.converters import caption_examples
    from geovec.train.data import write_jsonl

    rng = np.random.default_rng(0)
    pairs = []
    for k, (name, color, caption) in enumerate(SCENES):
        arr = np.clip(np.array(color)[None, None] + rng.normal(0, 12, (96, 96, 3)), 0, 255).astype(np.uint8)
        arr[:: 8 + 4 * (k % 3)] //= 2  # stripes with a different period per scene
        path = tmp_path / "imgs" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(arr).save(path)
        pairs.append((str(path), caption))
    write_jsonl(caption_examples([(p, [c]) for p, c in pairs]), tmp_path / "train.jsonl")
    return pairs


def _i2t_r1(model, pairs):
    q = model.encode_query([p for p, _ in pairs], task="retrieval")
    d = model.encode_document([c for _, c in pairs], task="retrieval")
    return float(np.mean(model.similarity(q, d).argmax(1) == np.arange(len(pairs))))


def test_tiny_run_lowers_loss_and_beats_untrained(tmp_path, compact_untrained):
    import geovec
    from geovec.train.config import TrainConfig
    from geovec.train.trainer import Trainer

    pairs = _fixture(tmp_path)
    before = _i2t_r1(compact_untrained, pairs)
    cfg = TrainConfig.from_dict({
        "data": [{"path": str(tmp_path / "train.jsonl")}], "output_dir": str(tmp_path / "run"),
        "trainable": ["vision_proj.", "head.", "logit_scale"], "batch_size": 12, "max_steps": 15,
        "warmup_steps": 2, "lr": 3e-3, "save_every": 0, "log_every": 1,
        "feature_cache": str(tmp_path / "features"), "revision": "tiny-test"})
    trainer = Trainer(cfg, model=compact_untrained)
    assert trainer.cache is not None and trainer.text_cache is not None  # frozen towers: both caches apply
    trainer.run(show_progress_bar=False)
    logs = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if r["kind"] == "train"]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    trained = geovec.load_model(tmp_path / "run" / "model")
    assert trained.revision == "tiny-test"
    after = _i2t_r1(trained, pairs)
    assert after > before and after >= 5 / 6, (before, after)
    # cached features stand in for the tower exactly: same embedding with and without the cache
    from geovec.inputs import parse_item
    from geovec.train.prepare import prepare_items

    item = parse_item({"image": pairs[0][0], "instruction": "Represent the given remote sensing image."})
    import torch

    with torch.no_grad():
        direct = trained.embed_prepared([trained.prepare(item)])
        cached = trained.embed_prepared(prepare_items(trained, [item], trainer.cache))
    assert torch.allclose(direct, cached, atol=1e-5)
    # exporting the run's checkpoint under a model name gives the same model
    from geovec.train.export import export_model

    exported = geovec.load_model(export_model(tmp_path / "run" / "checkpoint", tmp_path / "exported", name="geovec-tiny"))
    assert exported.model_id == "geovec-tiny" and exported.revision == "tiny-test-step15"
    q = [p for p, _ in pairs]
    assert np.abs(exported.encode_query(q) - trained.encode_query(q)).max() < 1e-5
