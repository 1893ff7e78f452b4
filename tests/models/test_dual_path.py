"""The dual-path model is exactly its two halves: the global (probe) path and the single encoder, each unit,
concatenated with the encoder half weighted; it saves, loads and embeds every kind of item."""

from dataclasses import asdict

import json

import numpy as np
import pytest
import torch
from PIL import Image

import geovec
from geovec.models.config import GeoVecConfig
from geovec.models.dual_path import DualPathModel
from geovec.models.single_encoder import SingleEncoderModel
from geovec.models.probe import ProbeModel
from geovec.models.registry import WEIGHTS_DIR
from tests.conftest import scene


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    probe = ProbeModel()
    with torch.no_grad():  # a non-trivial global path
        for p in list(probe.image_head.parameters()) + list(probe.location_map.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    probe.save(d / "probe")
    Image.fromarray(scene(1, 224)).save(d / "a.png")
    Image.fromarray(scene(2, 300)).save(d / "b.png")
    return d, probe


def _items(d):
    return [{"text": "storage tanks beside a harbour"}, {"image": str(d / "a.png")},
            {"image": str(d / "b.png"), "box": [10, 20, 150, 200]}, {"lat": 52.1, "lon": 5.1},
            {"image": str(d / "a.png"), "text": "a river", "lat": 51.4, "lon": 4.5, "instruction": "Find this place."}]


@pytest.mark.slow
@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_dual_path_is_its_two_halves(parts, weight):
    d, probe = parts
    model = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", encoder_weight=weight)
    items = _items(d)
    E = model.encode(items)
    assert E.shape == (5, 768) and model.embed_dim == 768
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    g = probe.encode(items)
    np.testing.assert_allclose(E[:, :384] * np.sqrt(1 + weight**2), g, atol=2e-4)
    # the other half is the single encoder with the same trained weights, under the items' instructions
    cfg = GeoVecConfig.from_dict({**asdict(model.encoder.config)})
    assert cfg.architecture == "single-encoder" and not any(t.startswith("global") for t in cfg.trainable)
    encoder = SingleEncoderModel(cfg)
    encoder.load_state_dict(model.encoder.state_dict())  # every name fits: the encoder half is a single encoder
    s = encoder.encode(items)
    np.testing.assert_allclose(E[:, 384:] * np.sqrt(1 + weight**2) / weight, s, atol=2e-4)
    # so cosine is a fixed mix of the two paths' cosines
    np.testing.assert_allclose(E @ E.T, (g @ g.T + weight**2 * (s @ s.T)) / (1 + weight**2), atol=3e-4)


def test_the_global_sentence_pass_never_reads_a_fine_tuned_encoder_layer(parts, tmp_path):
    from geovec.models.dual_path import encoder_patterns, tuned_text_layers
    from geovec.models.text_top import TextTop

    d, probe = parts
    assert tuned_text_layers(["head.", "backbone.model.encoder.layer.5.", "backbone.model.encoder.layer.4."]) == [4, 5]
    # the bundled encoder half fine-tunes MiniLM layers (4-5 in r20 and r26): without a text top given, the global path gets
    # its own pretrained copy from the first of them on (so its sentence embeddings are the frozen tower's, as the
    # probe's)
    cfg = json.loads((WEIGHTS_DIR / "geovec-compact" / "config.json").read_text())
    tuned = tuned_text_layers(encoder_patterns(cfg["trainable"]))
    assert tuned and 5 in tuned
    model = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe")
    assert model.settings["text_top_split"] == min(tuned)
    texts = ["a harbour with boats", "a dense forest"]
    np.testing.assert_allclose(model.encode(texts)[:, :384] * np.sqrt(2), probe.encode(texts), atol=2e-4)
    # a text top that starts above a fine-tuned layer would read it: refused before anything loads
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps({**cfg, "trainable": [*cfg["trainable"], "backbone.model.encoder.layer.3."]}))
    with pytest.raises(ValueError, match="fine-tuned MiniLM layer 3, below the text top's split 4"):
        DualPathModel.from_parts(enc, d / "probe", text_top=TextTop(probe.text.model, 4))


@pytest.mark.slow
def test_dual_path_round_trip(parts, tmp_path):
    d, _ = parts
    model = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", revision="test-r1")
    model.save_pretrained(tmp_path / "dual")
    loaded = geovec.load_model(tmp_path / "dual")
    assert isinstance(loaded, DualPathModel) and loaded.revision == "test-r1"
    np.testing.assert_allclose(loaded.encode(_items(d)), model.encode(_items(d)), atol=1e-4)


@pytest.mark.slow
def test_dual_path_fine_tunes_through_the_trainer(parts, tmp_path):
    """The trainer drives a dual-path model unchanged: the loss falls, both halves' trained parts move."""
    import json

    from geovec.train.config import TrainConfig
    from geovec.train.trainer import Trainer

    d, _ = parts
    model = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe")
    words = ["harbor", "runway", "forest", "farmland"]
    lines = []
    for i, w in enumerate(words):
        Image.fromarray(scene(10 + i, 96)).save(tmp_path / f"{w}.png")
        lines.append(json.dumps({"task": "retrieval", "query": {"image": f"{w}.png"},
                                 "positive": {"text": f"a {w} seen from above"}}))
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if n.startswith(("global_path.image_head.", "encoder.head."))}
    cfg = TrainConfig.from_dict(dict(base_model="unused", data=[{"path": str(tmp_path / "pairs.jsonl")}],
                                     output_dir=str(tmp_path / "run"), batch_size=4, max_steps=6, warmup_steps=1,
                                     save_every=0, log_every=1, lr=3e-3, learn_temperature=False))
    trainer = Trainer(cfg, model=model)
    losses = [trainer.train_step()["loss"] for _ in range(6)]
    assert np.mean(losses[-2:]) < losses[0], losses
    moved = {".".join(n.split(".")[:2]) for n, p in model.named_parameters()
             if n in before and not torch.equal(p, before[n])}
    assert moved == {"global_path.image_head", "encoder.head"}


@pytest.mark.slow
def test_global_vision_top_branches_the_tower_without_touching_the_encoder_half(parts, tmp_path):
    from geovec.models.vision_top import VisionTop

    d, _ = parts
    plain = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe")
    items = _items(d)
    ref = plain.encode(items)
    # an untouched copy of the top gives the same model
    same = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", vision_top=VisionTop(plain.vision.net))
    np.testing.assert_allclose(same.encode(items), ref, atol=1e-4)
    # a changed top moves the global half of image items only; it saves and loads with the model
    top = VisionTop(plain.vision.net)
    with torch.no_grad():
        for p in top.conv_head.parameters():
            p.mul_(1.5)
    tuned = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", vision_top=top)
    E = tuned.encode(items)
    np.testing.assert_allclose(E[:, 384:], ref[:, 384:], atol=1e-4)  # the encoder half
    moved = np.abs(E[:, :384] - ref[:, :384]).max(axis=1)
    assert moved[0] < 1e-4 and moved[3] < 1e-4  # text, location
    assert moved[1] > 1e-3 and moved[2] > 1e-3 and moved[4] > 1e-3  # image, box crop, image+text+place
    tuned.save_pretrained(tmp_path / "tuned")
    np.testing.assert_allclose(geovec.load_model(tmp_path / "tuned").encode(items), E, atol=1e-4)


def test_global_text_top_moves_the_global_half_of_text_items_only(parts, tmp_path):
    from geovec.models.text_top import TextTop

    d, probe = parts
    plain = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe")
    items = _items(d)
    ref = plain.encode(items)
    # an untouched copy of the pretrained top layers gives the same model
    same = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe",
                                    text_top=TextTop(probe.text.model, 4))
    np.testing.assert_allclose(same.encode(items), ref, atol=1e-4)
    top = TextTop(probe.text.model, 4)
    with torch.no_grad():
        for p in top.layers[-1].output.dense.parameters():
            p.mul_(1.5)
    tuned = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", text_top=top)
    assert tuned.config.extra["global_path"]["text_top_split"] == 4
    E = tuned.encode(items)
    np.testing.assert_allclose(E[:, 384:], ref[:, 384:], atol=1e-4)  # the encoder half keeps the frozen tower
    moved = np.abs(E[:, :384] - ref[:, :384]).max(axis=1)
    assert moved[1] < 1e-4 and moved[2] < 1e-4 and moved[3] < 1e-4  # image, box crop, location
    assert moved[0] > 1e-3 and moved[4] > 1e-3  # text, image+text+place
    tuned.save_pretrained(tmp_path / "tuned")
    loaded = geovec.load_model(tmp_path / "tuned", backend="torch")
    np.testing.assert_allclose(loaded.encode(items), E, atol=1e-4)


def test_the_encoder_half_trains_alone_and_goes_back_beside_the_same_global_path(parts, tmp_path):
    """save_encoder_half writes a single-encoder checkpoint that embeds as the encoder half does (a training run's
    base model); load_encoder_half puts a changed one back and moves the encoder half only."""
    d, _ = parts
    model = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe", revision="test-r1")
    items = _items(d)
    E = model.encode(items)
    model.save_encoder_half(tmp_path / "half", revision="test-r1-encoder")
    assert model.encoder.config.revision != "test-r1-encoder"  # the model's own config is left as it was
    half = geovec.load_model(tmp_path / "half", backend="torch")
    assert isinstance(half, SingleEncoderModel) and half.revision == "test-r1-encoder"
    assert not any(t.startswith("global") for t in half.config.trainable)
    np.testing.assert_allclose(half.encode(items), E[:, 384:] * np.sqrt(2), atol=2e-4)
    # "train" the single encoder (its head changes), save it, and put it back beside the global path
    with torch.no_grad():
        half.head.weight.mul_(-1.0)
    half.save_pretrained(tmp_path / "trained")
    model.load_encoder_half(tmp_path / "trained")
    assert model.config.extra["global_path"]["from"]["encoder"] == "test-r1-encoder"
    E2 = model.encode(items)
    np.testing.assert_allclose(E2[:, :384], E[:, :384], atol=1e-6)  # the global half is untouched
    np.testing.assert_allclose(E2[:, 384:] * np.sqrt(2), half.encode(items), atol=2e-4)
    assert np.abs(E2[:, 384:] - E[:, 384:]).max() > 1e-2
    # a checkpoint without some of this half's trained parts (here only a head) would leave r20's layers beside a
    # head trained on others: refused, nothing half-loaded
    narrow = geovec.load_model(tmp_path / "half", backend="torch")
    narrow.apply_trainable(["head."])
    narrow.save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"does not fit the model: unknown \[\], missing \['backbone"):
        model.load_encoder_half(tmp_path / "narrow")
    np.testing.assert_allclose(model.encode(items), E2, atol=1e-6)


def test_a_task_weight_leans_that_tasks_queries_on_the_encoder_half(parts, tmp_path):
    """query_weights {"vqa": a}: a question's global half is weighted a (0: the encoder half alone); every other
    item, and the same item under another instruction, embeds as before; a saved model keeps the weights."""
    d, _ = parts
    plain = DualPathModel.from_parts(WEIGHTS_DIR / "geovec-compact", d / "probe")
    question = [{"image": str(d / "a.png"), "text": "Are there any ships in the image?"}]
    others = _items(d)
    ref_q, ref_o = plain.encode(question, task="vqa"), plain.encode(others)
    ref_retrieval = plain.encode(question, task="retrieval")
    for a in (0.0, 0.5):
        plain.config.extra["global_path"]["query_weights"] = {"vqa": a}
        q = plain.encode(question, task="vqa")
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
        g, s = ref_q[:, :384], ref_q[:, 384:]  # each sqrt(1/2) of a unit vector at weight 1
        np.testing.assert_allclose(q, np.concatenate([a * g, s], 1) / np.sqrt((a * a + 1) / 2), atol=2e-5)
        np.testing.assert_allclose(plain.encode(others), ref_o, atol=2e-5)
        np.testing.assert_allclose(plain.encode(question, task="retrieval"), ref_retrieval, atol=2e-5)
    assert np.allclose(q[:, :384] / np.linalg.norm(q[:, :384]), g / np.linalg.norm(g), atol=1e-5)
    plain.config.revision = "weighted"
    plain.save_pretrained(tmp_path / "weighted")
    loaded = geovec.load_model(tmp_path / "weighted", lazy=False)
    np.testing.assert_allclose(loaded.encode(question, task="vqa"), q, atol=2e-5)
    bad = json.loads((tmp_path / "weighted" / "config.json").read_text())
    for table, message in (({"vqa": 1.5}, r"query_weights\['vqa'\] = 1.5: a query's global-half weight is in \[0, 1\]"),
                           ({"answering": 0.0}, "answering")):
        bad["extra"]["global_path"]["query_weights"] = table
        with pytest.raises(ValueError, match=message):
            DualPathModel(GeoVecConfig.from_dict(bad))
