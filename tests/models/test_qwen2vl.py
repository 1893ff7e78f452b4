"""The ``qwen2-vl`` architecture on tiny random-init Qwen2-VL / Qwen2.5-VL checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import geovec
from geovec.inputs import parse_item
from geovec.models.qwen2vl import Qwen2VLEmbedder, qwen_config


@pytest.fixture(scope="module")
def qwen(tiny_qwen2vl_dir):
    return Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, max_pixels=112 * 112))


@pytest.fixture(scope="module")
def qwen25(tiny_qwen25vl_dir):
    return Qwen2VLEmbedder(qwen_config(tiny_qwen25vl_dir, max_pixels=112 * 112))


def _perturb_adapters(model, scale=0.05):
    """LoRA B starts at zero (adapter == identity); give it weight so merge/save tests are not trivial."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g).to(p.dtype))


def test_mixed_batch_encodes(qwen, mixed_items):
    E = qwen.encode(mixed_items, task="retrieval", batch_size=8)
    assert E.shape == (len(mixed_items), 64) and np.isfinite(E).all()
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    alone = np.stack([qwen.encode([it], task="retrieval")[0] for it in mixed_items])
    np.testing.assert_allclose(E, alone, atol=1e-4)  # left padding + last-token pooling: batch-invariant


def test_sequence_layout_and_qwen2vl_boxes_are_0_1000(qwen, scene_png):
    item = parse_item({"image": scene_png, "box": [120, 20, 180, 60], "text": "roof"}).with_instruction("Find it.")
    p = qwen.prepare(item)
    text = qwen.decode(p)
    assert text.startswith("<|im_start|>system\nFind it.<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    # 200 x 100 px image: x / 200 * 1000, y / 100 * 1000
    assert "<|vision_end|><|box_start|>(600,200),(900,600)<|box_end|>roof<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n<|endoftext|>")
    assert p.input_ids[-1] == qwen.pad_id  # the pooled token is <|endoftext|>


def test_qwen25vl_boxes_are_pixels_of_the_resized_image(qwen25, scene_png):
    p = qwen25.prepare(parse_item({"image": scene_png, "box": [120, 20, 180, 60]}))
    t, h, w = (int(v) for v in p.image_grid_thw[0])
    width, height = w * 14, h * 14  # the frame the model sees after smart_resize
    assert (width, height) != (200, 100)
    sx, sy = width / 200, height / 100
    expect = f"<|box_start|>({round(120 * sx)},{round(20 * sy)}),({round(180 * sx)},{round(60 * sy)})<|box_end|>"
    assert expect in qwen25.decode(p)
    E = qwen25.encode([{"image": scene_png, "box": [120, 20, 180, 60]}, "a roof", {"lat": 1.0, "lon": 2.0}])
    assert E.shape == (3, 64) and np.isfinite(E).all()


def test_image_tokens_follow_the_grid_and_the_pixel_caps(tiny_qwen2vl_dir, scene_png):
    counts = {}
    for cap in (56 * 56, 112 * 112):
        m = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, max_pixels=cap, lora=None, location_token=False))
        p = m.prepare(parse_item(scene_png))
        t, h, w = (int(v) for v in p.image_grid_thw[0])
        n = p.input_ids.count(m.image_token_id)
        assert n == t * h * w // 4 and p.pixel_values.shape[0] == t * h * w
        assert h * w * 14 * 14 <= cap
        counts[cap] = n
    assert counts[56 * 56] < counts[112 * 112]


def test_location_as_text_and_projected_geoclip_token(qwen, tiny_qwen2vl_dir):
    p = qwen.prepare(parse_item({"lat": 52.1, "lon": 5.2}))
    assert "latitude 52.1000, longitude 5.2000<|vision_pad|>" in qwen.decode(p)
    a, b = qwen.encode([{"lat": 52.1, "lon": 5.2}, {"lat": -33.9, "lon": 151.2}])
    assert float(a @ b) < 0.99999
    no_tok = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, location_token=False))
    assert "<|vision_pad|>" not in no_tok.decode(no_tok.prepare(parse_item({"lat": 52.1, "lon": 5.2})))
    assert not hasattr(no_tok, "location_proj") and not hasattr(no_tok, "location")


def test_task_instructions_go_into_the_system_turn(qwen):
    item = parse_item("a harbor")
    q = qwen.prepare(item.with_instruction(qwen.query_instruction("classification")))
    assert "system\nIdentify the scene category of this remote sensing image.<|im_end|>" in qwen.decode(q)
    assert not np.allclose(qwen.encode_query(["a harbor"], task="classification"),
                           qwen.encode_query(["a harbor"], task="geo"))


def test_lora_defaults_and_dora(qwen, tiny_qwen2vl_dir):
    trainable = [n for n, p in qwen.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("location_proj.") for n in trainable)
    assert not any(".visual." in n for n in trainable)  # the vision tower is not adapted
    counts = qwen.parameter_counts()
    assert counts["trainable"] == sum(p.numel() for p in qwen.parameters() if p.requires_grad) < counts["total"]
    peft_cfg = qwen.backbone.peft_config["default"]
    assert (peft_cfg.r, peft_cfg.lora_alpha, peft_cfg.use_dora) == (16, 64, False)
    dora = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, lora={"r": 4, "alpha": 8, "dora": True}))
    assert any("lora_magnitude_vector" in n for n, p in dora.named_parameters() if p.requires_grad)


def test_save_load_and_merged_export(tiny_qwen2vl_dir, tmp_path, mixed_items):
    model = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, max_pixels=112 * 112))
    _perturb_adapters(model)
    before = model.encode(mixed_items)

    model.save_pretrained(tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "config.json").read_text())
    assert cfg["architecture"] == "qwen2-vl" and cfg["embed_dim"] == 64
    np.testing.assert_allclose(geovec.load_model(tmp_path / "adapter").encode(mixed_items), before, atol=1e-4)

    model.export_merged(tmp_path / "merged")
    merged = geovec.load_model(tmp_path / "merged")
    assert not hasattr(merged.backbone, "peft_config")
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    np.testing.assert_allclose(merged.encode(mixed_items), before, atol=1e-4)
    # the merged backbone is a plain transformers checkpoint
    from transformers import AutoModelForImageTextToText

    plain = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged" / "backbone")
    assert plain.config.model_type == "qwen2_vl"


def test_training_step_moves_only_trainable_parameters(tiny_qwen2vl_dir, mixed_items):
    from torch.nn import functional as F

    from geovec.inputs import parse_items

    qwen = Qwen2VLEmbedder(qwen_config(tiny_qwen2vl_dir, max_pixels=112 * 112))
    frozen = {n: p.detach().clone() for n, p in qwen.named_parameters() if not p.requires_grad}
    items = parse_items(mixed_items)
    opt = torch.optim.AdamW([p for p in qwen.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(6):
        q = F.normalize(qwen.embed_prepared([qwen.prepare(it) for it in items]), dim=-1)
        d = F.normalize(qwen.embed_prepared([qwen.prepare(it.with_instruction("Represent it.")) for it in items]), dim=-1)
        loss = F.cross_entropy(q @ d.T / 0.05, torch.arange(len(items)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    for n, p in qwen.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
