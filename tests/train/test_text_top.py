"""The text top: an untouched copy of the text tower's top layers gives the frozen sentence embeddings, through
the cached lower-layer states too; training on cached states lowers the loss, moves only the copy and the image
MLP, and resumes from its checkpoint exactly."""

import numpy as np
import pytest
import torch

from geovec.models.backbones import build_backbone
from geovec.models.global_path import ImageHead
from geovec.models.text_top import TextTop, top_sentence_embeddings
from geovec.train.text_top import embed_text_states, text_state_cache, train_text_top

TEXTS = ["a runway with two planes", "many green trees around a pond .", "storage tanks", "a bridge over a river",
         "dense residential buildings", "a baseball field beside a parking lot", "bare land", "a port with boats"]


@pytest.fixture(scope="module")
def tower():
    return build_backbone("minilm")  # all-MiniLM-L6-v2: .model, .tokenizer


@pytest.mark.parametrize("split", [0, 4, 5])
def test_untouched_top_is_the_frozen_tower(tower, split):
    ref = top_sentence_embeddings(tower.model, tower.tokenizer, None, TEXTS)
    got = top_sentence_embeddings(tower.model, tower.tokenizer, TextTop(tower.model, split), TEXTS)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-5)


def test_split_out_of_range_is_a_clear_error(tower):
    with pytest.raises(ValueError, match="text top split must be in 0..5"):
        TextTop(tower.model, 6)


def test_cached_states_give_the_same_embeddings_and_resume(tower, tmp_path):
    states = text_state_cache(tower.model, tower.tokenizer, TEXTS, 4, tmp_path, "t", chunk=3)
    ref = top_sentence_embeddings(tower.model, tower.tokenizer, None, TEXTS).numpy()
    np.testing.assert_allclose(embed_text_states(TextTop(tower.model, 4), states, batch=3), ref, atol=2e-3)  # fp16
    again = text_state_cache(tower.model, tower.tokenizer, TEXTS, 4, tmp_path, "t")
    np.testing.assert_array_equal(np.asarray(again.states), np.asarray(states.states))


def _train(tower, states, epochs, run, start=0, opt_state=None, seed_state=None):
    torch.manual_seed(0)
    top, head = TextTop(tower.model, 4), ImageHead(1280, 64, 384)
    scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
    if seed_state is not None:
        top.load_state_dict(seed_state["top"])
        head.load_state_dict(seed_state["head"])
        with torch.no_grad():
            scale.copy_(seed_state["logit_scale"])
    frozen = {n: p.detach().clone() for n, p in tower.model.named_parameters()}
    start_top = {n: p.detach().clone() for n, p in top.named_parameters()}
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(8, 1280)).astype(np.float32) for _ in range(2)]
    saved = {}
    hist = train_text_top(top, head, scale, feats, states, list(range(8)), list(range(8)), epochs=epochs,
                          batch_size=8, lr_top=1e-3, lr_head=3e-3, warmup_steps=1, log=lambda m: None,
                          checkpoint=lambda e, s: saved.update({e: {k: (v if k == "history" else
                                                                        _clone(v)) for k, v in s.items()}}),
                          start_epoch=start, opt_state=opt_state)
    assert all(torch.equal(p, frozen[n]) for n, p in tower.model.named_parameters()), "the tower stays frozen"
    moved = any(not torch.allclose(p, start_top[n]) for n, p in top.named_parameters())
    return hist, saved, top, moved


def _clone(v):
    import copy

    return copy.deepcopy(v)


def test_training_lowers_the_loss_and_resumes_exactly(tower, tmp_path):
    states = text_state_cache(tower.model, tower.tokenizer, TEXTS, 4, tmp_path, "t")
    hist, saved, top, moved = _train(tower, states, 6, tmp_path)
    assert moved and hist[-1]["loss"] < hist[0]["loss"]
    # resume after epoch 3 from its checkpoint: the same weights as the uninterrupted run
    ck = saved[3]
    _, _, resumed, _ = _train(tower, states, 6, tmp_path, start=3, opt_state=ck["opt"], seed_state=ck)
    for (n, a), (_, b) in zip(top.named_parameters(), resumed.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=n)


def test_class_prompts_replace_captions_with_their_probability(tower, tmp_path, monkeypatch):
    """class_prob=1: every pair's text is the image's class prompt (rows 6, 7 here), never a caption."""
    import geovec.train.text_top as tt

    states = text_state_cache(tower.model, tower.tokenizer, TEXTS, 4, tmp_path, "t")
    seen = []
    real = tt.TextStates.batch
    monkeypatch.setattr(tt.TextStates, "batch", lambda self, idx: (seen.append(list(idx)), real(self, idx))[1])
    top, head = TextTop(tower.model, 4), ImageHead(1280, 64, 384)
    scale = torch.nn.Parameter(torch.tensor(2.0))
    feats = [np.random.default_rng(0).normal(size=(6, 1280)).astype(np.float32)]
    train_text_top(top, head, scale, feats, states, list(range(6)), list(range(6)), epochs=1, batch_size=6,
                   log=lambda m: None, class_text=[6, 6, 6, 7, 7, 7], class_prob=1.0)
    assert seen and all(set(rows) <= {6, 7} for rows in seen)


def test_class_blocked_order_is_a_permutation_with_few_classes_per_batch():
    from geovec.train.text_top import class_blocked_order

    labels = np.repeat(np.arange(10), 37)
    order = class_blocked_order(labels, 32, 4, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(labels)))
    per_batch = [len(set(labels[order[s : s + 32]])) for s in range(0, len(order) - 31, 32)]
    assert max(per_batch) <= 8 and np.mean(per_batch) <= 5  # random batches of 32 would hold ~10 of 10 classes
