"""The vision top of the global path trains on cached block activations: the loss falls, the frozen tower stays
as it is, an untouched copy reproduces the tower, and a resumed run ends with the same weights."""

import copy

import numpy as np
import pytest
import torch

from geovec.models.global_path import ImageHead
from geovec.models.vision import build_vision_tower
from geovec.models.vision_top import SPLIT_BLOCK, VisionTop, run_from_split, run_to_split
from geovec.train.global_top import train_top


@pytest.fixture(scope="module")
def tower():
    return build_vision_tower("efficientnet-lite0").eval()


def test_untouched_top_is_the_frozen_tower(tower):
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        act = run_to_split(tower.net, x)
        np.testing.assert_allclose(VisionTop(tower.net).eval()(act).numpy(),
                                   run_from_split(tower.net, act).numpy(), atol=1e-5)


def _run(tower, acts, shape, epochs, start=0, state=None):
    torch.manual_seed(0)
    top, head = VisionTop(tower.net), ImageHead(1280, 32, 16)
    scale = torch.nn.Parameter(torch.tensor(2.0))
    if state is not None:
        top.load_state_dict(state["top"])
        head.load_state_dict(state["head"])
        with torch.no_grad():
            scale.copy_(state["logit_scale"])
    caps = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1).numpy()
    saved = {}
    hist = train_top(top, head, scale, acts, shape, caps, list(range(6)), epochs=epochs, batch_size=6, lr_top=1e-3,
                     lr_head=3e-3, warmup_steps=1, log=lambda m: None, start_epoch=start,
                     opt_state=None if state is None else state["opt"],
                     checkpoint=lambda e, s: saved.update({e: copy.deepcopy(s)}))
    return hist, saved, top


def test_training_lowers_the_loss_and_resumes_exactly(tower):
    frozen = {n: p.detach().clone() for n, p in tower.net.named_parameters()}
    with torch.no_grad():
        act = run_to_split(tower.net, torch.randn(6, 3, 64, 64), SPLIT_BLOCK)
    shape = tuple(act.shape[1:])
    acts = act.reshape(6, -1).numpy().astype(np.float16)
    hist, saved, top = _run(tower, acts, shape, 4)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert all(torch.equal(p, frozen[n]) for n, p in tower.net.named_parameters()), "the tower stays frozen"
    _, _, resumed = _run(tower, acts, shape, 4, start=2, state=saved[2])
    for (n, a), (_, b) in zip(top.named_parameters(), resumed.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=n)
