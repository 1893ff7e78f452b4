"""The single encoder's input sequence: a batch of prepared items laid out as one padded sequence of token
embeddings, each token with its type, attention and pooling masks.

Sequence layout per item (``order`` is the order the item gave its modalities)::

    prefix  [instruction tokens]  <image tokens | region tokens | location tokens | text tokens ...>  suffix

Each token also gets a learned type embedding (special/text, instruction, image, region, location).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from geovec.inputs import GeoVecInputError

TYPE_TEXT, TYPE_INSTRUCTION, TYPE_IMAGE, TYPE_REGION, TYPE_LOCATION = range(5)


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
        pooled = torch.cat(pooled_parts)  # (n_img, C, g, g)
        toks = model.vision_proj(pooled.flatten(2).transpose(1, 2)).squeeze(2)  # (n_img, g*g, d)
        image_rows = toks.reshape(-1, d)
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

    # layout: segments of (block, start row, length, type, is_wrapper); blocks: 0 ids, 1 image, 2 region, 3 location
    ids_flat: list[int] = []

    def ids_segment(ids: list[int], typ: int, wrapper: bool = False) -> tuple:
        ids_flat.extend(ids)
        return (0, len(ids_flat) - len(ids), len(ids), typ, wrapper)

    layouts = []
    for i, p in enumerate(prepared):
        seg = []
        if bb.prefix_ids:
            seg.append(ids_segment(bb.prefix_ids, TYPE_TEXT, True))
        if p.instruction is not None:
            seg.append(ids_segment(instr_ids[p.instruction], TYPE_INSTRUCTION))
        for m in p.order:
            if m == "image":
                seg.append((1, img_slot[i] * n_img_tok, n_img_tok, TYPE_IMAGE, False))
            elif m == "box":
                seg.append((2, region_start[i], p.boxes.shape[0], TYPE_REGION, False))
            elif m == "location":
                seg.append((3, loc_slot[i] * k_loc, k_loc, TYPE_LOCATION, False))
            elif m == "text":
                seg.append(ids_segment(text_ids[p.text], TYPE_TEXT))
        if bb.suffix_ids:
            seg.append(ids_segment(bb.suffix_ids, TYPE_TEXT, True))
        layouts.append(seg)
    lengths = [sum(s[2] for s in seg) for seg in layouts]
    limit = getattr(bb, "max_positions", None)
    for i, n in enumerate(lengths):
        if limit and n > limit:
            raise GeoVecInputError(f"sequence of {n} tokens exceeds the encoder's {limit} (too many boxes?)", i)

    token_rows = bb.embed_tokens(torch.tensor(ids_flat, dtype=torch.long, device=dev)) if ids_flat \
        else torch.zeros(0, d, device=dev)
    blocks = [token_rows, image_rows, region_rows, loc_rows]
    offsets = np.cumsum([0] + [b.shape[0] for b in blocks])
    pad_row = int(offsets[-1])  # the all-zero row appended below
    B, T = len(prepared), max(lengths)
    index = np.full((B, T), pad_row, dtype=np.int64)
    types = np.zeros((B, T), dtype=np.int64)
    attn = np.zeros((B, T), dtype=np.int64)
    pool_mask = np.zeros((B, T), dtype=np.float32)
    for b, seg in enumerate(layouts):
        start = T - lengths[b] if bb.padding_side == "left" else 0
        pos = start
        # region_pooling "regions": an item with boxes stands for the marked region, so the mean runs
        # over its region tokens (which attend to the whole image) and its own text only, not over the
        # image tokens or the sequence's wrapper tokens ([CLS]/[SEP]) that summarise the whole scene
        region_item = cfg.region_pooling == "regions" and any(s[3] == TYPE_REGION for s in seg)
        for block, row, n, typ, wrapper in seg:
            index[b, pos:pos + n] = np.arange(offsets[block] + row, offsets[block] + row + n)
            types[b, pos:pos + n] = typ
            skip = typ == TYPE_INSTRUCTION and not cfg.pool_instruction
            skip |= region_item and (typ == TYPE_IMAGE or wrapper)
            if not skip:
                pool_mask[b, pos:pos + n] = 1.0
            pos += n
        attn[b, start:pos] = 1
    dtype = token_rows.dtype
    rows = torch.cat([blk.to(dtype) for blk in blocks] + [torch.zeros(1, d, dtype=dtype, device=dev)])
    embeds = rows[torch.from_numpy(index).to(dev)]
    return (embeds, torch.from_numpy(types).to(dev), torch.from_numpy(attn).to(dev),
            torch.from_numpy(pool_mask).to(dev))
