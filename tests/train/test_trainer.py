import json

import torch

from geovec.train.config import DataSource, TrainConfig
from geovec.train.data import Example, write_jsonl

from .tiny import TinyTextModel

WORDS = ["airport", "beach", "bridge", "church", "desert", "forest", "harbour", "meadow", "parking", "river",
         "school", "stadium"]


def _examples():
    return [Example("retrieval", {"text": f"an image of a {w}"}, [{"text": f"{w} seen from above"}],
                    [{"text": f"{WORDS[(i + 1) % len(WORDS)]} seen from above"}])
            for i, w in enumerate(WORDS)]


def _config(tmp_path, name, **kw):
    data = tmp_path / "d.jsonl"
    write_jsonl(_examples(), data)
    base = dict(data=[DataSource(str(data))], output_dir=str(tmp_path / name), batch_size=6, max_steps=8,
                warmup_steps=2, lr=0.01, save_every=0, log_every=1, hard_negatives=1, dropout=True, seed=3)
    base.update(kw)
    return TrainConfig.from_dict(base)


def _params(trainer):
    return {n: p.detach().clone() for n, p in trainer.params}


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    from geovec.train.trainer import Trainer

    straight = Trainer(_config(tmp_path, "a"), model=TinyTextModel())
    straight.run(show_progress_bar=False)
    first = Trainer(_config(tmp_path, "b"), model=TinyTextModel())
    first.run(show_progress_bar=False, stop_at=3)
    assert first.step == 3
    resumed = Trainer(_config(tmp_path, "b"), model=TinyTextModel())  # a fresh process would do the same
    resumed.run(show_progress_bar=False)
    assert resumed.step == 8
    a, b = _params(straight), _params(resumed)
    for n in a:
        assert torch.equal(a[n], b[n]), n
    assert straight.optimizer.state_dict()["state"].keys() == resumed.optimizer.state_dict()["state"].keys()
    logs = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if r["kind"] == "train"] == list(range(1, 9))


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    """A run under nohup or CI (stderr a file) reports its steps and loss as lines; a resumed run counts on."""
    from geovec.train.trainer import Trainer

    Trainer(_config(tmp_path, "p"), model=TinyTextModel()).run(stop_at=3)
    Trainer(_config(tmp_path, "p"), model=TinyTextModel()).run()
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("train: ")]
    assert lines[-1].startswith("train: 8/8 steps (100%)") and ", loss " in lines[-1], lines
    assert any(l.startswith("train: 3/8 steps") for l in lines), lines


def test_training_lowers_the_loss_and_schedule_warms_up_then_decays(tmp_path):
    from geovec.train.trainer import Trainer

    t = Trainer(_config(tmp_path, "c", max_steps=30, warmup_steps=5), model=TinyTextModel())
    records = [t.train_step() for _ in range(30)]
    lrs = [r["lr"] for r in records]
    assert lrs[0] < lrs[2] < lrs[3] and lrs[-1] < lrs[10] < lrs[4]  # warmup then cosine decay
    assert sum(r["loss"] for r in records[-5:]) < sum(r["loss"] for r in records[:5])
    assert all(r["grad_norm"] >= 0 for r in records)


def test_gradcache_step_matches_plain_step(tmp_path):
    from geovec.train.trainer import Trainer

    plain = Trainer(_config(tmp_path, "p", dropout=False), model=TinyTextModel())
    cached = Trainer(_config(tmp_path, "g", dropout=False, chunk_size=2), model=TinyTextModel())
    for _ in range(3):
        rp, rc = plain.train_step(), cached.train_step()
        assert abs(rp["loss"] - rc["loss"]) < 1e-5
    for (n, a), (_, b) in zip(plain.params, cached.params):
        assert torch.allclose(a, b, atol=1e-5), n


def test_trainable_selection_and_temperature(tmp_path):
    from geovec.train.trainer import Trainer

    t = Trainer(_config(tmp_path, "t", trainable=["head."], learn_temperature=False, temperature=0.02),
                model=TinyTextModel())
    names = [n for n, _ in t.params]
    assert names and all(n.startswith("head.") for n in names)
    assert abs(float(t.model.logit_scale.exp()) - 50.0) < 1e-3
    before = t.model.bag.weight.clone()
    t.train_step()
    assert torch.equal(before, t.model.bag.weight)
    assert abs(float(t.model.logit_scale.exp()) - 50.0) < 1e-3


def test_config_file_yaml_and_unknown_keys(tmp_path):
    import pytest

    p = tmp_path / "c.yaml"
    p.write_text("batch_size: 7\ndata:\n  - {path: x.jsonl, weight: 2, hard_negatives: -1}\n")
    cfg = TrainConfig.load(p)
    assert cfg.batch_size == 7 and cfg.data[0].weight == 2 and cfg.data[0].hard_negatives == -1
    p.write_text("batchsize: 7\n")
    with pytest.raises(ValueError, match="batchsize"):
        TrainConfig.load(p)


def test_a_trained_base_keeps_its_other_trained_parts_in_the_saved_model(tmp_path):
    """A run that trains some parts of a trained checkpoint (e.g. the encoder half of a dual-path model) saves the
    parts the checkpoint carries beside them, so the result loads whole; the run still trains only its own."""
    from geovec.train.trainer import Trainer

    seen = []
    model = TinyTextModel()  # as loaded from a checkpoint whose trained parts are bag., head., logit_scale
    model.save_pretrained = lambda directory, dtype=None: seen.append(list(model.config.trainable)) or directory
    t = Trainer(_config(tmp_path, "k", trainable=["head."], base_model=str(tmp_path / "ckpt")), model=model)
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "bag.weight" not in trains and {"head.0.weight", "head.2.weight"} <= trains
    t.save_model(tmp_path / "out")
    assert seen[0][0] == "head." and set(seen[0]) == {"head.", "bag.", "logit_scale"}
    assert model.config.trainable == ["head."]  # restored after saving
    fresh = Trainer(_config(tmp_path, "u", trainable=["head."]), model=TinyTextModel())  # untrained base: nothing kept
    assert fresh.kept_parts == []
