"""The one real-model test: whatever geovec.load_model() returns runs through the harness end to end."""

import numpy as np
import pytest
from tests.bench.formats import write_caption_dataset, write_dior_rsvg, write_image

from geovec.bench.encoders import BenchEncoder
from geovec.bench.runner import RunConfig, run_benchmark
from geovec.bench.tasks import get_task


@pytest.mark.slow
def test_default_model_through_the_harness(tmp_path, model):
    root = tmp_path / "data"
    entries = [(f"s_{i}.jpg", "test", [f"a scene with {w} number {i} ." for w in ("roads", "trees")]) for i in range(3)]
    write_caption_dataset(root / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    write_dior_rsvg(root / "DIOR_RSVG", {"00001": [("airplane", (5, 5, 30, 30), "the large airplane"),
                                                   ("vehicle", (40, 40, 60, 60), "the car at the bottom right")]},
                    {"test": [0, 1]})
    enc = BenchEncoder(model, batch_size=8)
    cfg = RunConfig(data_root=root, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    recs = run_benchmark([get_task("RSICD-retrieval"), get_task("DIOR-RSVG-referring")], enc, cfg, log=lambda *_: None)
    for r in recs:
        assert r["status"] == "ok", r.get("reason")
        s = r["scores"]["test"][0]
        assert 0 <= s["main_score"] <= 1 and np.isfinite(s["mrr"])
        assert r["model_name"] == model.model_id and r["model_revision"] == model.revision
        assert 0 < r["timing"]["forward_s"] <= r["timing"]["encode_s"] <= r["evaluation_time"]
    assert recs[1]["scores"]["test"][0]["within_group"]["chance_p@1"] == 0.5
    # a second harness encoder on the same model object still sees its forward time
    other = BenchEncoder(model)
    before = other.forward_seconds
    other.encode([{"text": "a runway"}])
    assert other.forward_seconds > before


@pytest.mark.slow
def test_reused_image_features_give_the_same_embeddings(tmp_path, model):
    img = write_image(tmp_path / "a.png", 0, size=96)
    items = [{"image": img, "instruction": "Represent the given remote sensing image."},
             {"image": img, "instruction": "Identify the scene category of this remote sensing image."},
             {"image": img, "box": [10, 10, 50, 60], "instruction": "Represent the given image region."},
             {"image": img, "text": "a harbour", "instruction": "Find this."}]
    direct = model.encode(items)
    enc = BenchEncoder(model)
    first = enc.encode(items[:2])
    rest = enc.encode(items[2:])
    assert np.allclose(np.concatenate([first, rest]), direct, atol=1e-5)
    # one tower pass for the four items; the dual-path model's global half adds one for the box crop
    crops = 1 if model.config.architecture == "dual-path" else 0
    assert enc.feature_memo.misses == 1 + crops and enc.feature_memo.hits == 3
    assert "vision_features" not in vars(model)  # the model object is left as it was
