"""The open_clip adapter on a tiny fake open_clip-like torch module (no open_clip weights here); the adapter
code path (preprocess, crops, fusion, tokenizer) is the real one."""

import numpy as np
import pytest
import torch
from tests.bench.formats import write_caption_dataset
from PIL import Image
from torch import nn

from geovec.bench.encoders import BenchEncoder, OpenCLIPAdapter, clip_preprocess
from geovec.bench.runner import RunConfig, run_benchmark
from geovec.bench.tasks import get_task


class FakeCLIP(nn.Module):
    """encode_image: per-channel means and stds of the normalised pixels -> linear; encode_text: bag of tokens."""

    def __init__(self, dim=12):
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Linear(6, dim)
        self.txt = nn.EmbeddingBag(64, dim, padding_idx=0)

    def encode_image(self, x):
        return self.img(torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1))

    def encode_text(self, tokens):
        return self.txt(tokens)


def tokenizer(texts, context_length=32):
    """Fixed context length with padding id 0, like open_clip's tokenizers."""
    ids = [[1 + ord(ch) % 63 for ch in t[:context_length]] for t in texts]
    return torch.tensor([row + [0] * (context_length - len(row)) for row in ids])


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def adapter():
    return OpenCLIPAdapter(FakeCLIP(), tokenizer, model_id="fake-clip", revision="t0")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_image_text_and_fusion(adapter, image):
    model, pre = adapter.model, clip_preprocess()
    with torch.no_grad():
        e_img = unit(model.encode_image(pre(Image.fromarray(image))[None]).numpy()[0])
        e_txt = unit(model.encode_text(tokenizer(["a runway"])).numpy()[0])
    out = adapter.encode([{"image": image}, {"text": "a runway"}, {"image": image, "text": "a runway"}])
    assert np.allclose(out[0], e_img, atol=1e-5) and np.allclose(out[1], e_txt, atol=1e-5)
    assert np.allclose(out[2], unit(e_img + e_txt), atol=1e-5)


def test_box_is_a_region_crop_and_location_is_text(adapter, image):
    crop = image[10:40, 5:37]
    out = adapter.encode([{"image": image, "box": [5, 10, 37, 40]}, {"image": crop},
                          {"lat": 52.1, "lon": 5.25}, {"text": "latitude 52.1000, longitude 5.2500"}])
    assert np.allclose(out[0], out[1], atol=1e-5)
    assert np.allclose(out[2], out[3], atol=1e-5)


def test_batching_does_not_change_embeddings(adapter, image):
    items = [{"image": image}, {"text": "x"}, {"text": "a longer caption"}, {"image": image[:20]}]
    assert np.allclose(adapter.encode(items, batch_size=1), adapter.encode(items, batch_size=32), atol=1e-5)


def test_preprocess_is_clip_like():
    x = clip_preprocess(224)(Image.new("RGB", (300, 200), (255, 255, 255)))
    assert tuple(x.shape) == (3, 224, 224)
    assert torch.allclose(x[:, 0, 0], (1 - torch.tensor([0.48145466, 0.4578275, 0.40821073]))
                          / torch.tensor([0.26862954, 0.26130258, 0.27577711]))


def test_adapter_is_benchmarked_by_the_same_harness(tmp_path, adapter):
    entries = [(f"s_{i}.jpg", "test", [f"caption {i} a .", f"caption {i} b ."]) for i in range(4)]
    write_caption_dataset(tmp_path / "data" / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    cfg = RunConfig(data_root=tmp_path / "data", out_dir=tmp_path / "out", cache_dir=tmp_path / "c", progress=False)
    recs = run_benchmark([get_task("RSICD-retrieval")], BenchEncoder(adapter), cfg, log=lambda *_: None)
    s = recs[0]["scores"]["test"][0]
    assert recs[0]["status"] == "ok" and recs[0]["model_name"] == "fake-clip"
    assert 0 <= s["main_score"] <= 1 and s["chance_p@1"] == pytest.approx(2 / 8)


def test_reduced_precision_backends_get_their_own_revision():
    class Model:
        model_id, revision, backend = "m", "r1", "torch"

        def encode(self, items, batch_size=32, show_progress_bar=None):
            return np.zeros((len(items), 4), dtype=np.float32)

    fp32, bf16 = Model(), Model()
    bf16.backend = "openvino-bf16"
    assert BenchEncoder(fp32).revision == "r1" and BenchEncoder(bf16).revision == "r1+bf16"
    assert BenchEncoder(fp32).namespace != BenchEncoder(bf16).namespace
