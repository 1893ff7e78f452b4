"""Fine-tune the top of the vision tower for the global path, on cached intermediate activations.

The frozen-towers probe maps the mean-pooled EfficientNet-Lite0 feature map through an MLP; most of what the
tower cannot express for remote sensing sits in its last blocks. Here the tower runs once per training image up
to block ``split`` (block 10: 112 x 14 x 14 at 224 px, about 44 KB in fp16), those activations are cached, and
a copy of the blocks above it (11-15 and the head convolution, BatchNorm statistics frozen) trains together with
the probe's MLP against the frozen sentence embeddings of the captions (symmetric InfoNCE, LiT). The 8 dihedral
transforms of the cached maps serve as augmentation (overhead imagery has no up).

The result is the global path's own vision top (:class:`VisionTop`); the single encoder keeps the frozen tower,
so its half of a dual-path model is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.models.vision_top import SPLIT_BLOCK, VisionTop, run_to_split  # noqa: F401  (re-exported)
from geovec.train.cached_loop import epoch_seed, optimizer, run_epochs
from geovec.train.loss import capped_scale, info_nce


def dihedral_maps(x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Apply dihedral view ``views[i]`` (0-7: rot90 k = v % 4, then a transpose if v >= 4) to map ``x[i]``."""
    out = torch.empty_like(x)
    for v in range(8):
        sel = (views == v).nonzero(as_tuple=True)[0]
        if sel.numel():
            y = torch.rot90(x[sel], v % 4, dims=(2, 3))
            out[sel] = y.transpose(2, 3) if v >= 4 else y
    return out


def block_activation_cache(tower, images: Sequence[str | Path], directory: str | Path, name: str,
                           split: int = SPLIT_BLOCK, image_size: int = 224, chunk: int = 32,
                           log: Callable[[str], None] | None = None) -> np.ndarray:
    """(N, C * h * w) fp16 block-``split`` activations of ``images`` (resized as the probe does), resumable."""
    from geovec.inputs import read_image
    from geovec.models.global_path import preprocess_pixels
    from geovec.train.probe import ArrayCache, content_key

    probe_px = preprocess_pixels(read_image(images[0]).pixels, image_size)
    with torch.inference_mode():
        shape = tuple(run_to_split(tower.net, probe_px[None], split).shape[1:])
    key = content_key("block-act-v1", split, image_size, [str(p) for p in images])
    cache = ArrayCache(directory, f"{name}-block{split}", key, len(images), int(np.prod(shape)))

    def compute(s: int, e: int) -> np.ndarray:
        px = [preprocess_pixels(read_image(p).pixels, image_size) for p in images[s:e]]
        if any(tuple(p.shape) != tuple(probe_px.shape) for p in px):
            raise ValueError(f"{name}: images must share one size after resizing (got {sorted({tuple(p.shape) for p in px})})")
        with torch.inference_mode():
            return run_to_split(tower.net, torch.stack(px), split).reshape(len(px), -1).float().numpy()

    arr = cache.fill(compute, chunk, log, f"{name} block-{split} activations")
    arr.act_shape = shape  # type: ignore[attr-defined]
    return arr


def embed_activations(top: VisionTop, head: nn.Module, acts: np.ndarray, shape: tuple, batch: int = 128) -> np.ndarray:
    out = []
    top.eval()
    head.eval()
    with torch.inference_mode():
        for s in range(0, len(acts), batch):
            x = torch.from_numpy(np.asarray(acts[s : s + batch], dtype=np.float32)).reshape(-1, *shape)
            out.append(F.normalize(head(top(x).mean(dim=(2, 3))), dim=-1).numpy())
    return np.concatenate(out)


def train_top(top: VisionTop, head: nn.Module, logit_scale: nn.Parameter, acts: np.ndarray, shape: tuple,
              caption_emb: np.ndarray, owner: Sequence[int], epochs: int = 6, batch_size: int = 128,
              lr_top: float = 2e-4, lr_head: float = 5e-4, weight_decay: float = 0.05, warmup_steps: int = 30,
              augment: bool = True, seed: int = 0, evaluate: Callable[[], dict] | None = None,
              log: Callable[[str], None] = print, checkpoint: Callable[[int, dict], None] | None = None,
              start_epoch: int = 0, opt_state: dict | None = None) -> list[dict]:
    """(block activations, one random caption of the image) pairs, symmetric InfoNCE; one record per epoch.

    ``checkpoint(epoch, state)`` is called after every epoch with everything needed to resume exactly
    (``start_epoch`` / ``opt_state``): the epoch's permutation and views derive from ``seed`` and the epoch."""
    owner = np.asarray(owner)
    n = len(acts)
    slots = [np.flatnonzero(owner == i) for i in range(n)]
    if any(len(s) == 0 for s in slots):
        raise ValueError("every training image needs at least one caption")
    caps = torch.from_numpy(np.asarray(caption_emb, dtype=np.float32))
    steps_per_epoch = max(1, n // batch_size)

    def batches(epoch: int):
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        rng = np.random.default_rng(epoch_seed(seed, epoch))
        perm = torch.randperm(n, generator=gen).numpy()
        for b in range(steps_per_epoch):
            idx = np.sort(perm[b * batch_size : (b + 1) * batch_size])
            x = torch.from_numpy(np.asarray(acts[idx], dtype=np.float32)).reshape(len(idx), *shape)
            if augment:
                x = dihedral_maps(x, torch.from_numpy(rng.integers(0, 8, len(idx))))
            yield x, caps[torch.from_numpy(np.array([rng.choice(slots[i]) for i in idx]))]

    def loss_of(batch) -> torch.Tensor:
        x, t = batch
        z = F.normalize(head(top(x).mean(dim=(2, 3))), dim=-1)
        return info_nce(z, t, torch.eye(len(z), dtype=torch.bool), capped_scale(logit_scale), normalize=False,
                        symmetric=True)

    opt = optimizer([(top.parameters(), lr_top), ([*head.parameters(), logit_scale], lr_head)], weight_decay,
                    opt_state)
    return run_epochs(opt, {"top": top, "head": head}, logit_scale, batches, loss_of, epochs, steps_per_epoch,
                      warmup_steps, start_epoch=start_epoch, evaluate=evaluate, checkpoint=checkpoint, log=log,
                      log_every=20)
