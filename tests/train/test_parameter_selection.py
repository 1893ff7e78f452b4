"""Which parameters train, on the real compact model: encoder layers by prefix, or LoRA adapters (peft)."""

import torch

from geovec.models import build_untrained
from geovec.train.trainer import Trainer, lora_merged_state

from .test_trainer import _config


def _snapshot(model, prefix):
    return {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith(prefix)}


def test_encoder_layer_prefix_trains_only_that_layer(tmp_path):
    model = build_untrained(seed=1)
    t = Trainer(_config(tmp_path, "layer", trainable=["backbone.model.encoder.layer.5."], max_steps=2,
                        batch_size=4, dropout=False, learn_temperature=False), model=model)
    names = [n for n, _ in t.params]
    assert names and all(n.startswith("backbone.model.encoder.layer.5.") for n in names)
    last, other = _snapshot(model, "backbone.model.encoder.layer.5."), _snapshot(model, "backbone.model.encoder.layer.4.")
    t.train_step()
    t.train_step()
    assert any(not torch.equal(p, last[n]) for n, p in model.named_parameters() if n in last)
    assert all(torch.equal(p, other[n]) for n, p in model.named_parameters() if n in other)


def test_lora_adapters_train_and_merge(tmp_path):
    model = build_untrained(seed=1)
    base = _snapshot(model, "backbone.model.encoder.layer.0.attention.self.query")
    t = Trainer(_config(tmp_path, "lora", trainable=[], lora={"r": 4, "alpha": 8}, max_steps=2, batch_size=4,
                        learn_temperature=False, dropout=False), model=model)
    names = [n for n, _ in t.params]
    assert names and all("lora_" in n for n in names)
    lora_before = {n: p.detach().clone() for n, p in t.params}
    t.train_step()
    t.train_step()
    assert any(not torch.equal(p, lora_before[n]) for n, p in t.params)
    merged = lora_merged_state(model)
    key = "backbone.model.encoder.layer.0.attention.self.query.weight"
    assert key in merged and not torch.allclose(merged[key], base[key])
    # the frozen base weight itself is untouched; only the adapter moved
    assert torch.equal(model.backbone.model.encoder.layer[0].attention.self.query.base_layer.weight, base[key])
