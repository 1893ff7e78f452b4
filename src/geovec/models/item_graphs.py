"""Whole-item graphs of the dual-path model: a text-only or image-only item from its integer layout to the model's
embedding in one graph, so the exported-graph runtime (:mod:`geovec.runtime.graph_model`) embeds the commonest
items (a text query, an image to index) without torch.

Each graph is the model's own forward steps on the integer layout of :mod:`geovec.models.layout`: token ids ->
the backbone's token embeddings, the rows gathered as :func:`~geovec.models.sequence.assemble` gathers them,
:meth:`~geovec.models.single_encoder.SingleEncoderModel.pool_sequence`, the head, the global path's part and
:meth:`~geovec.models.dual_path.DualPathModel.combine`. What stays outside is numpy: the tokenizer, the layout, and
for images the vision graph (a stage graph) with the feature map's grid pooling and mean
(:func:`geovec.models.layout.adaptive_avg_pool`).

* ``text``: ``ids (N,)``, ``index``, ``types``, ``attn``, ``pool_mask`` ``(B, T)``, the global path's sentence
  ``g_ids``, ``g_mask`` ``(B, S)`` -> ``(B, 2d)``;
* ``image``: ``ids (N,)``, ``grid (n, C, g, g)`` (the image tokens' pooled feature maps), ``gmean (B, C)`` (the
  global view's mean feature), ``index``, ``types``, ``attn``, ``pool_mask`` -> ``(B, 2d)``.

Outputs are not yet L2-normalised (``encode`` does that, as for the torch model).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from geovec.models.sequence import gather, image_rows_from_grid
from geovec.models.text_top import sentence_vectors

ITEM_GRAPH_FORMAT = 1  # bump when what an item graph computes changes

_SEQ = {0: "batch", 1: "tokens"}
SIGNATURES = {
    "text": (["ids", "index", "types", "attn", "pool_mask", "g_ids", "g_mask"], ["embedding"],
             {"ids": {0: "n_ids"}, "index": _SEQ, "types": _SEQ, "attn": _SEQ, "pool_mask": _SEQ,
              "g_ids": {0: "batch", 1: "g_tokens"}, "g_mask": {0: "batch", 1: "g_tokens"},
              "embedding": {0: "batch"}}),
    "image": (["ids", "grid", "gmean", "index", "types", "attn", "pool_mask"], ["embedding"],
              {"ids": {0: "n_ids"}, "grid": {0: "n_images"}, "gmean": {0: "batch"}, "index": _SEQ, "types": _SEQ,
               "attn": _SEQ, "pool_mask": _SEQ, "embedding": {0: "batch"}}),
}


def supports_item_graphs(model) -> bool:
    """Whether ``model`` has item graphs: the dual-path model without its own vision top."""
    from geovec.models.dual_path import DualPathModel

    return isinstance(model, DualPathModel) and model.global_path.vision_top is None


class TextItems(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, index, types, attn, pool_mask, g_ids, g_mask):
        m = self.model
        enc = m.encoder
        embeds = gather([enc.backbone.embed_tokens(ids)], index)
        encoder = F.normalize(enc.project(enc.pool_sequence(embeds, types, attn, pool_mask, text_only=True)), dim=-1)
        states = m.global_path.text_states_fn()(g_ids, g_mask)
        glob = F.normalize(sentence_vectors(states, g_mask), dim=-1)  # the global path's sum of one unit part
        return m.combine(glob, encoder)


class ImageItems(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, grid, gmean, index, types, attn, pool_mask):
        m = self.model
        enc = m.encoder
        embeds = gather([enc.backbone.embed_tokens(ids), image_rows_from_grid(enc, grid)], index)
        encoder = F.normalize(enc.project(enc.pool_sequence(embeds, types, attn, pool_mask)), dim=-1)
        glob = F.normalize(m.global_path.image_part(gmean), dim=-1)
        return m.combine(glob, encoder)


def examples(model) -> dict[str, tuple[torch.Tensor, ...]]:
    """Example inputs for the export: two items each, one padded."""
    ids = torch.tensor([101, 2023, 2003, 102, 101, 2009, 102], dtype=torch.long)
    index = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    types = torch.zeros(2, 4, dtype=torch.long)
    attn = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    pool = attn.float()
    g_ids = torch.tensor([[101, 2023, 2003, 102], [101, 2009, 102, 0]])
    g = model.config.image_grid
    channels = model.encoder.vision.channels
    n_tok = g * g
    img_ids = torch.tensor([101, 102, 101, 102], dtype=torch.long)
    # item b: [CLS] <image tokens> [SEP]; the image rows follow the 4 id rows
    img_index = torch.stack([torch.cat([torch.tensor([2 * b]), 4 + b * n_tok + torch.arange(n_tok),
                                        torch.tensor([2 * b + 1])]) for b in range(2)])
    img_types = torch.zeros_like(img_index)
    img_types[:, 1:-1] = 2
    img_attn = torch.ones_like(img_index)
    return {"text": (ids, index, types, attn, pool, g_ids, attn.clone()),
            "image": (img_ids, torch.randn(2, channels, g, g), torch.randn(2, channels), img_index, img_types,
                      img_attn, img_attn.float())}


def item_modules(model) -> dict[str, nn.Module]:
    return {"text": TextItems(model).eval(), "image": ImageItems(model).eval()}
