"""sentence-transformers both ways: its keywords on geovec's ``encode``, and a geovec model directory loaded by
``SentenceTransformer`` (custom module), round-tripped through ``save``, on text, image, image+box and lat/lon."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import scene

st = pytest.importorskip("sentence_transformers")

from geovec.integrations.sentence_transformers import GeoVecModule, to_sentence_transformer  # noqa: E402
from geovec.models.registry import WEIGHTS_DIR  # noqa: E402

BUNDLED = WEIGHTS_DIR / "geovec-compact"
IMG = Image.fromarray(scene(3, 160))
ITEMS = ["an airport runway", IMG, {"image": IMG, "box": [10, 10, 90, 70]}, {"lat": 52.1, "lon": 5.2}]
TOL = 2e-3  # the session model may run an ONNX backend, the loaded one torch (cosine >= 0.9999 between them)


def test_encode_takes_the_sentence_transformers_keywords(model):
    E = model.encode(ITEMS)
    assert E.shape == (4, model.get_sentence_embedding_dimension()) == (4, 768)
    one = model.encode("an airport runway")  # a single item -> one vector
    assert one.shape == (768,) and np.allclose(one, E[0], atol=1e-5)
    t = model.encode(ITEMS, convert_to_tensor=True, normalize_embeddings=True, device="cpu")
    assert isinstance(t, torch.Tensor) and t.shape == (4, 768) and np.allclose(t.numpy(), E, atol=1e-5)
    rows = model.encode(ITEMS[:2], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and rows[0].shape == (768,)
    assert np.allclose(np.linalg.norm(model.encode(ITEMS, normalize_embeddings=False), axis=1), 1, atol=1e-4)
    # named prompts: the task kinds, "query" and "document", the same as task= / side=
    assert {"query", "document", "retrieval", "region", "geo"} <= set(model.prompts)
    q = model.encode_query(["an airport runway"], task="retrieval")
    assert np.allclose(model.encode(["an airport runway"], prompt_name="query"), q, atol=1e-5)
    assert np.allclose(model.encode(["an airport runway"], "query"), q, atol=1e-5)  # positional, as in s-t
    d = model.encode_document(ITEMS, task="retrieval")
    assert np.allclose(model.encode(ITEMS, prompt_name="document"), d, atol=1e-5)
    assert np.allclose(model.encode(ITEMS[2:3], prompt_name="region"), model.encode(ITEMS[2:3], task="region"), atol=1e-5)
    literal = "Represent this remote sensing scene for retrieval."
    assert np.allclose(model.encode(ITEMS[:1], prompt=literal), model.encode(ITEMS[:1], instruction=literal), atol=1e-5)
    with pytest.raises(ValueError, match="prompt name 'passage'"):
        model.encode(ITEMS[:1], "passage")  # a one-word "instruction" is a prompt name, never silently literal


def test_sentence_transformer_loads_a_geovec_model_directory(model):
    s = st.SentenceTransformer(str(BUNDLED), trust_remote_code=True, device="cpu")
    assert isinstance(s[0], GeoVecModule) and s.get_embedding_dimension() == 768
    assert s.similarity_fn_name == "cosine" and s.prompts["region"] == model.prompts["region"]
    A = s.encode(ITEMS)
    assert A.shape == (4, 768) and np.abs(A - model.encode(ITEMS)).max() < TOL
    assert np.abs(s.encode_query(["an airport runway"]) - model.encode_query(["an airport runway"])).max() < TOL
    assert np.abs(s.encode_document(ITEMS) - model.encode_document(ITEMS)).max() < TOL
    assert np.abs(s.encode(ITEMS, prompt_name="region") - model.encode(ITEMS, task="region")).max() < TOL
    assert s.encode("an airport runway").shape == (768,)
    with pytest.raises(ValueError, match="trust_remote_code"):
        st.SentenceTransformer(str(BUNDLED))  # the module is geovec's code: sentence-transformers asks for trust


def test_adapter_and_save_round_trip(model, tmp_path):
    s = to_sentence_transformer(model)  # the one-line adapter: any loaded geovec model
    A = s.encode(ITEMS, normalize_embeddings=True)
    assert np.allclose(A, model.encode(ITEMS), atol=1e-5)
    s.save(str(tmp_path / "saved"))
    saved = tmp_path / "saved"
    # what save writes is the same model directory geovec ships (and load_model reads)
    assert json.loads((saved / "modules.json").read_text()) == json.loads((BUNDLED / "modules.json").read_text())
    ours = json.loads((saved / "config_sentence_transformers.json").read_text())
    bundled = json.loads((BUNDLED / "config_sentence_transformers.json").read_text())
    assert ours["prompts"] == bundled["prompts"] == model.prompts
    cfg, shipped = (json.loads((d / "config.json").read_text()) for d in (saved, BUNDLED))
    assert (cfg["architecture"], cfg["revision"], cfg["extra"]["global_path"]["hidden"]) == \
        (shipped["architecture"], shipped["revision"], shipped["extra"]["global_path"]["hidden"])
    from safetensors.torch import load_file

    from geovec.models.dual_path import DualPathModel

    # the same weights, the bundled file's first parameter layout read in the current one
    a = load_file(str(saved / "model.safetensors"))
    b = DualPathModel.upgrade_state_dict(load_file(str(BUNDLED / "model.safetensors")))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
