"""The default model is composed of parts: a single encoder and a global path that reads the encoder's towers (the
same modules, never copies); its config is its own copy (the one given is left as it is); checkpoints of the first
parameter layout load through one rename table; one name resolver serves load_model, the CLI and the benchmark."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

import geovec
from geovec.models.config import GeoVecConfig
from geovec.models.dual_path import LAYOUT_1_RENAMES, DualPathModel, encoder_patterns, upgrade_name
from geovec.models.registry import WEIGHTS_DIR, load_model, name_scheme

BUNDLED = WEIGHTS_DIR / "geovec-compact"


def to_layout_1(name: str) -> str:
    """A current name or pattern in the first layout (the bundled weights up to r20 were written so)."""
    for old, new in LAYOUT_1_RENAMES.items():
        if name.startswith(new):
            return old + name[len(new):]
    return name[len("encoder."):] if name.startswith("encoder.") else name


@pytest.fixture(scope="module")
def layout_1(tmp_path_factory):
    """The bundled checkpoint written in the first layout."""
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("layout-1")
    config = json.loads((BUNDLED / "config.json").read_text())
    config["trainable"] = [to_layout_1(p) for p in config["trainable"]]
    (out / "config.json").write_text(json.dumps(config))
    save_file({to_layout_1(k): t for k, t in load_file(str(BUNDLED / "model.safetensors")).items()},
              str(out / "model.safetensors"))
    return out


def test_layout_1_names_and_patterns_upgrade_once(layout_1):
    assert upgrade_name("global_image.1.weight") == "global_path.image_head.1.weight"
    assert upgrade_name("global_location.") == "global_path.location_map."
    assert upgrade_name("global_text_top.") == "global_path.text_top."
    assert upgrade_name("vision_proj.") == "encoder.vision_proj."
    assert upgrade_name("backbone.model.encoder.layer.4.") == "encoder.backbone.model.encoder.layer.4."
    assert upgrade_name("*.bias") == "*.bias"  # a wildcard pattern matches across both halves already
    for new in ("encoder.head.weight", "global_path.image_head.0.bias"):
        assert upgrade_name(new) == new and upgrade_name(upgrade_name(new)) == new
    for folder in (BUNDLED, layout_1):
        shipped = json.loads((folder / "config.json").read_text())["trainable"]
        assert "head." in encoder_patterns(shipped) and not any("global" in p for p in encoder_patterns(shipped))


@pytest.fixture(scope="module")
def bundled():
    return load_model(BUNDLED, backend="torch")


def test_the_global_path_reads_the_encoders_towers(bundled):
    towers = bundled.global_path.towers
    assert towers.vision is bundled.encoder.vision and towers.text is bundled.encoder.backbone
    names = [n for n, _ in bundled.named_parameters()]
    assert all(n.startswith(("encoder.", "global_path.")) for n in names)
    # the towers are registered once (by the encoder), the global path holds its own maps and text top only
    assert {n.split(".")[1] for n in names if n.startswith("global_path.")} == {"image_head", "location_map", "text_top"}
    assert sum(p.numel() for p in bundled.parameters()) == sum(p.numel() for p in dict(bundled.named_parameters()).values())
    counts = bundled.parameter_counts()  # what geovec info prints: the encoder's modules and the global path's parts
    assert {"backbone", "vision", "location", "head", "global_path.image_head", "global_path.text_top"} <= set(counts)
    assert counts["total"] == sum(v for k, v in counts.items() if k not in ("trainable", "total"))


def test_building_leaves_the_config_given_as_it_is(layout_1):
    given = GeoVecConfig.from_json(layout_1 / "config.json")
    before = asdict(given)
    model = DualPathModel(given)
    assert asdict(given) == before  # the layout-1 patterns stay in the caller's object
    assert "global_path.image_head." in model.config.trainable and "encoder.head." in model.config.trainable
    assert model.encoder.config.architecture == "single-encoder" and "global_path" not in model.encoder.config.extra
    assert model.settings["text_top_split"] == 4 and model.config.revision == given.revision


@pytest.mark.slow
def test_a_layout_1_checkpoint_loads_and_saves_in_the_current_layout(bundled, layout_1, tmp_path):
    from safetensors.torch import load_file

    old = load_model(layout_1, backend="torch")
    old.save_pretrained(tmp_path / "saved")
    saved = load_file(str(tmp_path / "saved" / "model.safetensors"))
    shipped = load_file(str(layout_1 / "model.safetensors"))  # the first layout: global_image., head., ...
    assert any(k.startswith("global_image.") for k in shipped)
    assert saved.keys() == {upgrade_name(k) for k in shipped}
    assert all(torch.equal(saved[upgrade_name(k)], t) for k, t in shipped.items())
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["trainable"] == bundled.config.trainable
    items = ["a harbour", {"lat": 52.1, "lon": 5.2}]
    again = load_model(tmp_path / "saved", backend="torch")
    np.testing.assert_array_equal(again.encode(items), bundled.encode(items))
    np.testing.assert_array_equal(old.encode(items), bundled.encode(items))


def test_one_name_resolver(tmp_path):
    from geovec.bench.encoders import ChanceEncoder, load_encoder

    chance = load_model("chance:8")
    assert isinstance(chance, ChanceEncoder) and chance.encode(["x"]).shape == (1, 8)
    assert load_encoder("chance").model_id == "chance"
    assert name_scheme("geovec-compact") is None and name_scheme(tmp_path) is None
    folder = tmp_path / "chance"  # a checkpoint folder is a folder, whatever its name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert name_scheme(str(folder)) is None
    with pytest.raises(ValueError, match="open_clip:<arch>:<pretrained>"):
        load_model("open_clip:ViT-B-32")
    with pytest.raises(ValueError, match="probe: needs a folder"):
        load_model("probe:")
    assert geovec.load_model is load_model
