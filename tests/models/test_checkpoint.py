import json

import numpy as np
import pytest
import torch

from geovec.models import build_untrained, load_model
from tests.conftest import scene


def test_round_trip_keeps_embeddings(tmp_path):
    m = build_untrained(seed=3)
    with torch.no_grad():  # make the trained parts differ from any fresh init
        for n, p in m.named_parameters():
            if m.is_trainable_name(n):
                p.add_(torch.randn_like(p) * 0.01)
    items = ["wetlands", {"image": scene(1), "box": [10, 10, 90, 90], "lat": 10.0, "lon": 20.0}]
    before = m.encode(items)
    m.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["architecture"] == "single-encoder"
    from safetensors.torch import load_file

    names = set(load_file(str(tmp_path / "ckpt" / "model.safetensors")))
    assert names and all(m.is_trainable_name(n) for n in names)
    assert not any(n.startswith(("vision.", "location.", "backbone.")) for n in names)  # frozen towers stay out
    loaded = load_model(tmp_path / "ckpt")
    assert np.abs(loaded.encode(items) - before).max() < 1e-5
    assert np.abs(build_untrained(seed=3).encode(items) - before).max() > 1e-3


def test_mismatched_checkpoint_is_refused(tmp_path):
    m = build_untrained()
    m.save_pretrained(tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    cfg["embed_dim"] = 128
    (tmp_path / "c" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="shape"):
        load_model(tmp_path / "c")
    (tmp_path / "c" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_model(tmp_path / "c")
