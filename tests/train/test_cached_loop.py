"""The loop for training on cached features: the shared warm-up + cosine schedule, early stop at total_steps with
the schedule decaying over it, eval mode outside the steps, and checkpoints that resume to the same weights."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from geovec.train.cached_loop import epoch_seed, optimizer, run_epochs, warmup_cosine
from geovec.train.loss import capped_scale, info_nce


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    assert [warmup_cosine(s, 10, 4, base=2.0) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert warmup_cosine(4, 10, 4, base=2.0) == 2.0  # the peak, then down
    assert warmup_cosine(7, 10, 4, base=2.0) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(10, 10, 4, base=2.0) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(50, 10, 4, min_ratio=0.1) == pytest.approx(0.1)  # past the end: stays at the floor
    assert warmup_cosine(0, 10, 0) == 1.0  # no warm-up: starts at the peak


def _task(seed=0):
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(16, 4))
    scale = nn.Parameter(torch.tensor(2.0))
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(24, 8)).astype(np.float32))
    y = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(24, 4)).astype(np.float32)), dim=-1)

    def batches(epoch):
        gen = torch.Generator().manual_seed(epoch_seed(5, epoch))
        torch.manual_seed(epoch_seed(5, epoch))  # dropout replays on resume
        perm = torch.randperm(24, generator=gen)
        for b in range(3):
            yield perm[b * 8 : (b + 1) * 8]

    def loss_of(idx):
        z = torch.nn.functional.normalize(head(x[idx]), dim=-1)
        return info_nce(z, y[idx], torch.eye(len(idx), dtype=torch.bool), capped_scale(scale), normalize=False,
                        symmetric=True)

    return head, scale, batches, loss_of


def _run(epochs=4, start=0, state=None, log=None, **kw):
    head, scale, batches, loss_of = _task()
    if state is not None:
        head.load_state_dict(state["head"])
        with torch.no_grad():
            scale.copy_(state["logit_scale"])
    opt = optimizer([([*head.parameters(), scale], 0.05)], 0.01, None if state is None else state["opt"])
    saved = {}
    hist = run_epochs(opt, {"head": head}, scale, batches, loss_of, epochs, 3, 2, start_epoch=start,
                      checkpoint=lambda e, s: saved.update({e: copy.deepcopy(s)}), log=log, **kw)
    return hist, saved, head, opt


def test_training_lowers_the_loss_and_a_resumed_run_ends_with_the_same_weights():
    hist, saved, head, _ = _run()
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4] and [h["steps"] for h in hist] == [3, 6, 9, 12]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert not head.training, "eval mode after training"
    rest, _, resumed, _ = _run(start=2, state=saved[2])
    assert [h["epoch"] for h in rest] == [3, 4]
    for (n, a), (_, b) in zip(head.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n


def test_total_steps_ends_early_with_the_schedule_decayed_over_it():
    losses, lines = [], []
    hist, saved, _, opt = _run(total_steps=5, step_losses=losses, evaluate=lambda: {"score": 1.0},
                               log=lines.append, log_every=2)
    assert [h["steps"] for h in hist] == [3, 5] and len(losses) == 5 and list(saved) == [1, 2]
    assert hist[1]["loss"] == pytest.approx(np.mean(losses[3:])) and hist[1]["val"] == {"score": 1.0}
    assert opt.param_groups[0]["lr"] == pytest.approx(warmup_cosine(4, 5, 2, 0.05))  # the last step's rate
    assert lines[0].startswith("epoch 1 step 2/3 loss") and any(l.startswith("epoch 2/4 loss") for l in lines)
