"""CPU-side preparation of training items, taking frozen vision features from the on-disk cache."""

from __future__ import annotations

import os
from typing import Sequence

import torch

from geovec.inputs import Item
from geovec.inputs.raster import image_size


def prepare_items(model, items: Sequence[Item], cache=None, pool=None, fill_missing: bool = False) -> list:
    """``model.prepare`` for each item, except that an image file whose features are cached is not decoded:
    ``model.prepare_with_features`` gives it the cached feature map (boxes normalised by the file's pixel size).
    ``fill_missing``: compute and store the features of image files not cached yet (training reuses them)."""

    if cache is not None and fill_missing:
        missing = {str(it.image) for it in items if isinstance(it.image, (str, os.PathLike)) and not cache.has(it.image)}
        if missing:  # same tower work the forward pass would do, but kept for the next time the image comes
            cache.fill(sorted(missing), show_progress_bar=False)

    def one(item: Item):
        return prepare_one(model, item, cache)

    if pool is not None:
        return list(pool.map(one, items))
    return [one(it) for it in items]


def prepare_one(model, item: Item, cache=None):
    """``model.prepare(item)``, or, for an image file whose features are cached, ``model.prepare_with_features``."""
    img = item.image
    if cache is not None and isinstance(img, (str, os.PathLike)) and cache.has(img):
        return model.prepare_with_features(item, cache.get(img), image_size(img))
    return model.prepare(item)


def embed_items(model, items: Sequence[Item], cache=None, batch_size: int = 64, embed_fn=None) -> torch.Tensor:
    """L2-normalised embeddings (N, D) of already-instructed items, using the feature cache (eval helper): the
    model's encode loop (:func:`geovec.models.encode_loop.encode_items`) with the cached feature maps standing in
    for decoded images. ``embed_fn(prepared) -> (B, D)`` replaces ``model.embed_prepared`` (e.g. the trainer's
    text cache)."""
    from geovec.models.encode_loop import encode_items

    if not items:
        return torch.empty(0, model.embed_dim)
    out = encode_items(model, list(items), batch_size, show_progress_bar=False, prepare=lambda it: prepare_one(model, it, cache),
                       embed=embed_fn, inference=False)  # not inference_mode: cached states may later enter autograd
    return torch.from_numpy(out)
