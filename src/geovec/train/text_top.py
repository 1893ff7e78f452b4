"""Let the text side adapt: fine-tune the top layers of the text tower for the global path, on cached states.

The probe (LiT) keeps all-MiniLM-L6-v2 frozen and moves only the image MLP into its sentence space. Here the
tower runs once per distinct training text up to layer ``split`` and those token states are cached (fp16, padded
to the longest text); a copy of the layers above it (:class:`~geovec.models.text_top.TextTop`) trains together
with the image MLP (started from the trained probe) against the cached pooled image features, symmetric InfoNCE.
A step costs the copied layers only; the lower layers and the vision tower never run during training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.models.pooling import sentence_vectors
from geovec.models.text_top import TextTop, run_to_split
from geovec.train.cached_loop import epoch_seed, optimizer, run_epochs
from geovec.train.loss import capped_scale, info_nce


class TextStates:
    """Cached (N, T, d) fp16 layer-``split`` states of N texts (padded to T) and their token counts."""

    def __init__(self, states: np.ndarray, lengths: np.ndarray, max_len: int, dim: int):
        self.states, self.lengths, self.max_len, self.dim = states, np.asarray(lengths), int(max_len), int(dim)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden (B, t, d) float32, mask (B, t)) with t the longest text of the batch."""
        idx = np.asarray(idx)
        t = int(self.lengths[idx].max())
        order = np.argsort(idx)  # memmap reads in file order
        rows = np.empty((len(idx), self.max_len * self.dim), dtype=np.float16)
        rows[order] = self.states[idx[order]]
        hidden = torch.from_numpy(rows.reshape(len(idx), self.max_len, self.dim)[:, :t].astype(np.float32))
        mask = (torch.arange(t)[None, :] < torch.from_numpy(self.lengths[idx])[:, None]).long()
        return hidden, mask


def text_state_cache(bert, tokenizer, texts: Sequence[str], split: int, directory: str | Path, name: str,
                     max_tokens: int = 64, chunk: int = 256, log: Callable[[str], None] | None = None) -> TextStates:
    """Layer-``split`` token states of ``texts`` (tokenised as sentence-transformers does, at most
    ``max_tokens``), cached resumably under ``directory``."""
    from geovec.train.probe import ArrayCache, content_key

    lengths = np.array([len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]])
    max_len, dim = int(lengths.max()), int(bert.config.hidden_size)
    key = content_key("text-states-v1", bert.config.name_or_path.rsplit("/", 1)[-1], split, max_tokens, list(texts))
    cache = ArrayCache(directory, f"{name}-layer{split}", key, len(texts), max_len * dim)

    def compute(s: int, e: int) -> np.ndarray:
        enc = tokenizer(list(texts[s:e]), padding="max_length", truncation=True, max_length=max_len,
                        return_tensors="pt")
        with torch.inference_mode():
            h = run_to_split(bert, enc["input_ids"], enc["attention_mask"], split)
        return (h * enc["attention_mask"][..., None]).reshape(e - s, -1).float().numpy()

    arr = cache.fill(compute, chunk, log, f"{name} text states (layer {split})")
    return TextStates(arr, lengths, max_len, dim)


def embed_text_states(top: TextTop, states: TextStates, batch: int = 256) -> np.ndarray:
    """(N, d) unit sentence vectors of every cached text through ``top``."""
    out = []
    top.eval()
    order = np.argsort(states.lengths, kind="stable")  # little padding per batch
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            h, m = states.batch(idx)
            out.append((idx, sentence_vectors(top(h, m), m).numpy()))
    emb = np.empty((len(states), states.dim), dtype=np.float32)
    for idx, e in out:
        emb[idx] = e
    return emb


def class_blocked_order(image_class: np.ndarray, batch_size: int, classes_per_batch: int,
                        rng: np.random.Generator) -> np.ndarray:
    """A permutation of all images whose consecutive ``batch_size`` slices hold images of about
    ``classes_per_batch`` classes: each class's images are shuffled and cut into blocks of
    ``batch_size // classes_per_batch``, the blocks are shuffled and laid end to end."""
    block = max(1, batch_size // max(1, classes_per_batch))
    blocks = []
    for c in np.unique(image_class):
        idx = rng.permutation(np.flatnonzero(image_class == c))
        blocks.extend(idx[s : s + block] for s in range(0, len(idx), block))
    order = rng.permutation(len(blocks))
    return np.concatenate([blocks[i] for i in order])


def train_text_top(top: TextTop, head: nn.Module, logit_scale: nn.Parameter, image_features: Sequence[np.ndarray],
                   states: TextStates, caption_text: Sequence[int], owner: Sequence[int], epochs: int = 10,
                   batch_size: int = 256, lr_top: float = 3e-5, lr_head: float = 3e-4, weight_decay: float = 0.05,
                   warmup_steps: int = 30, seed: int = 0, evaluate: Callable[[], dict] | None = None,
                   log: Callable[[str], None] = print, checkpoint: Callable[[int, dict], None] | None = None,
                   start_epoch: int = 0, opt_state: dict | None = None, class_text: Sequence[int] | None = None,
                   class_prob: float = 0.0, image_class: Sequence[int] | None = None, hard_classes: int = 0,
                   hard_from: int = 2) -> list[dict]:
    """(pooled image features of a random cached view, one random caption of the image) pairs, symmetric
    InfoNCE over the batch; captions that are the same text as another pair's count as its positives too.

    ``caption_text[j]``: the row in ``states`` of caption ``j``; ``owner[j]``: its image. ``checkpoint(epoch,
    state)`` gets everything needed to resume exactly (``start_epoch`` / ``opt_state``): the order and picks of an
    epoch derive from ``seed`` and the epoch. ``class_text[i]`` (optional): the row of image ``i``'s class prompt
    ("a remote sensing image of {class}."), drawn instead of a caption with probability ``class_prob`` (images of
    one class in a batch then share a positive). Hard negatives: from epoch ``hard_from`` (0-based) on, with
    ``image_class`` and ``hard_classes`` > 0, each batch holds images of about ``hard_classes`` classes only
    (:func:`class_blocked_order`), so the in-batch negatives are same-class scenes with near captions. Returns
    one record per epoch."""
    owner, caption_text = np.asarray(owner), np.asarray(caption_text)
    feats = [np.asarray(f, dtype=np.float32) for f in image_features]
    n = feats[0].shape[0]
    slots = [np.flatnonzero(owner == i) for i in range(n)]
    if any(len(s) == 0 for s in slots):
        raise ValueError("every training image needs at least one caption")
    steps_per_epoch = max(1, n // batch_size)

    def batches(epoch: int):
        rng = np.random.default_rng(epoch_seed(seed, epoch))
        torch.manual_seed(epoch_seed(seed, epoch))  # dropout in the copied layers: an epoch replays exactly on resume
        perm = rng.permutation(n)
        if image_class is not None and hard_classes > 0 and epoch >= hard_from:
            perm = class_blocked_order(np.asarray(image_class), batch_size, hard_classes, rng)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            views = rng.integers(0, len(feats), len(idx))
            x = torch.from_numpy(np.stack([feats[v][i] for v, i in zip(views, idx)]))
            rows = caption_text[np.array([rng.choice(slots[i]) for i in idx])]
            if class_text is not None and class_prob > 0:
                use = rng.random(len(idx)) < class_prob
                rows = np.where(use, np.asarray(class_text)[idx], rows)
            yield x, rows

    def loss_of(batch) -> torch.Tensor:
        x, rows = batch
        h, m = states.batch(rows)
        same = torch.from_numpy(rows[:, None] == rows[None, :])  # one text drawn twice: both are positives
        return info_nce(F.normalize(head(x), dim=-1), sentence_vectors(top(h, m), m), same, capped_scale(logit_scale),
                        normalize=False, symmetric=True, soft_targets=True)

    opt = optimizer([(top.parameters(), lr_top), ([*head.parameters(), logit_scale], lr_head)], weight_decay,
                    opt_state)
    return run_epochs(opt, {"top": top, "head": head}, logit_scale, batches, loss_of, epochs, steps_per_epoch,
                      warmup_steps, start_epoch=start_epoch, evaluate=evaluate, checkpoint=checkpoint, log=log,
                      log_every=10)
