"""The single encoder's input sequence: a batch of prepared items laid out as one padded sequence of token
embeddings, each token with its type, attention and pooling masks.

The layout itself (which row each position reads, in numpy) is :mod:`geovec.models.layout`'s. Each token also gets a learned type embedding (special/text, instruction, image, region, location).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError
from geovec.models.layout import Layout, arrange


def assemble(model, prepared: Sequence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch as encoder input: (token embeddings (B, T, d), types (B, T), attention mask (B, T),
    pooling mask (B, T)). Every source (token ids, image, region and location tokens) is computed in
    one batched call; the per-item loop only lays out integer positions."""
    bb, cfg, dev = model.backbone, model.config, model.device
    # tokenisation: each distinct string once per batch (a task's instruction repeats on every item)
    texts = sorted({p.text for p in prepared if p.text is not None})
    instrs = sorted({p.instruction for p in prepared if p.instruction is not None})
    text_ids = dict(zip(texts, bb.tokenize(texts, cfg.max_text_tokens))) if texts else {}
    instr_ids = dict(zip(instrs, bb.tokenize(instrs, cfg.max_instruction_tokens))) if instrs else {}

    need_tower = [i for i, p in enumerate(prepared) if p.pixels is not None and p.features is None]
    computed = dict(zip(need_tower, model.vision_features([prepared[i].pixels for i in need_tower])))
    fmaps = {i: (p.features.to(dev) if p.features is not None else computed.get(i)) for i, p in enumerate(prepared)}
    img_idx = [i for i, p in enumerate(prepared) if fmaps[i] is not None and "image" in p.order]
    d, grid = bb.hidden_size, cfg.image_grid
    image_rows = torch.zeros(0, d, device=dev)
    img_slot: dict[int, int] = {}
    if img_idx:
        by_shape: dict[tuple, list[int]] = {}
        for i in img_idx:
            by_shape.setdefault(tuple(fmaps[i].shape), []).append(i)
        pooled_parts, order_parts = [], []
        for idx in by_shape.values():
            pooled_parts.append(F.adaptive_avg_pool2d(torch.stack([fmaps[i] for i in idx]), grid))
            order_parts.extend(idx)
        image_rows = image_rows_from_grid(model, torch.cat(pooled_parts))  # (n_img * g * g, d)
        img_slot = {i: j for j, i in enumerate(order_parts)}
    n_img_tok = grid * grid

    box_idx = [i for i, p in enumerate(prepared) if "box" in p.order]
    region_rows = torch.zeros(0, d, device=dev)
    region_start: dict[int, int] = {}
    if box_idx:
        region_rows = model.regions.batched([fmaps[i] for i in box_idx], [prepared[i].boxes.to(dev) for i in box_idx])
        start = 0
        for i in box_idx:
            region_start[i] = start
            start += prepared[i].boxes.shape[0]

    loc_idx = [i for i, p in enumerate(prepared) if p.lat is not None]
    loc_rows = torch.zeros(0, d, device=dev)
    k_loc = model.location_proj.tokens
    if loc_idx:
        lat = torch.tensor([prepared[i].lat for i in loc_idx], device=dev)
        lon = torch.tensor([prepared[i].lon for i in loc_idx], device=dev)
        loc_rows = model.location_proj(model.location_features(lat, lon)).reshape(-1, d)  # (n_loc * k, d)
    loc_slot = {i: j for j, i in enumerate(loc_idx)}

    lay = Layout()
    for i, p in enumerate(prepared):
        lay.add_item(p.order, bb.prefix_ids, bb.suffix_ids,
                     instruction_ids=instr_ids[p.instruction] if p.instruction is not None else None,
                     text_ids=text_ids.get(p.text), image=(img_slot[i] * n_img_tok, n_img_tok) if i in img_slot else None,
                     regions=(region_start[i], p.boxes.shape[0]) if i in region_start else None,
                     location=(loc_slot[i] * k_loc, k_loc) if i in loc_slot else None)
    limit = getattr(bb, "max_positions", None)
    for i, n in enumerate(lay.lengths()):
        if limit and n > limit:
            raise GeoVecInputError(f"sequence of {n} tokens exceeds the encoder's {limit} (too many boxes?)", i)

    token_rows = bb.embed_tokens(torch.tensor(lay.ids, dtype=torch.long, device=dev)) if lay.ids \
        else torch.zeros(0, d, device=dev)
    blocks = [token_rows, image_rows, region_rows, loc_rows]
    index, types, attn, pool_mask = arrange(lay, [b.shape[0] for b in blocks], bb.padding_side, cfg.region_pooling,
                                            cfg.pool_instruction)
    embeds = gather(blocks, torch.from_numpy(index).to(dev))
    return (embeds, torch.from_numpy(types).to(dev), torch.from_numpy(attn).to(dev),
            torch.from_numpy(pool_mask).to(dev))


def gather(blocks: Sequence[torch.Tensor], index: torch.Tensor) -> torch.Tensor:
    """The sequence's token embeddings (B, T, d): row ``index`` of the blocks stacked, with an all-zero row after
    them (padding) (:func:`geovec.models.layout.arrange`)."""
    d = blocks[0].shape[-1]
    dtype = blocks[0].dtype
    rows = torch.cat([blk.to(dtype) for blk in blocks] + [torch.zeros(1, d, dtype=dtype, device=blocks[0].device)])
    return rows[index]


def image_rows_from_grid(model, pooled: torch.Tensor) -> torch.Tensor:
    """Grid-pooled feature maps (n, C, g, g) -> image tokens (n * g * g, d)."""
    toks = model.vision_proj(pooled.flatten(2).transpose(1, 2)).squeeze(2)  # (n, g*g, d)
    return toks.reshape(-1, model.backbone.hidden_size)
