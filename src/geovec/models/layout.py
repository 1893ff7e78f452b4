"""Where each token of the single encoder's input sequence comes from: the integer layout of a batch, in numpy.

Every token row is taken from one of four blocks of rows computed for the whole batch (token ids, image tokens,
region tokens, location tokens). An item is a list of *segments* (block, first row, length, token type, is a
wrapper token); :func:`arrange` turns the items' segments into the padded ``(B, T)`` arrays the encoder reads: the
row index of every position (padding points at an all-zero row after the last block), token types, attention
mask and pooling mask. The torch model (:func:`geovec.models.sequence.assemble`) and the exported-graph runtime
(:mod:`geovec.models.graph_model`) lay out items with these same functions; nothing here imports torch.

Sequence layout per item (``order`` is the order the item gave its modalities)::

    prefix  [instruction tokens]  <image tokens | region tokens | location tokens | text tokens ...>  suffix
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

TYPE_TEXT, TYPE_INSTRUCTION, TYPE_IMAGE, TYPE_REGION, TYPE_LOCATION = range(5)
IDS, IMAGE, REGION, LOCATION = range(4)  # the row blocks

Segment = tuple[int, int, int, int, bool]  # (block, first row, length, token type, wrapper)


@dataclass
class Layout:
    """A batch's segments and the flat token ids of its ``IDS`` block."""

    ids: list[int] = field(default_factory=list)
    items: list[list[Segment]] = field(default_factory=list)

    def id_segment(self, ids: Sequence[int], typ: int, wrapper: bool = False) -> Segment:
        self.ids.extend(ids)
        return (IDS, len(self.ids) - len(ids), len(ids), typ, wrapper)

    def add_item(self, order: Sequence[str], prefix_ids: Sequence[int], suffix_ids: Sequence[int],
                 instruction_ids: Sequence[int] | None = None, text_ids: Sequence[int] | None = None,
                 image: tuple[int, int] | None = None, regions: tuple[int, int] | None = None,
                 location: tuple[int, int] | None = None) -> None:
        """One item in ``order``; ``image`` / ``regions`` / ``location``: (first row, number of rows) of its
        tokens in that block."""
        seg: list[Segment] = []
        if prefix_ids:
            seg.append(self.id_segment(prefix_ids, TYPE_TEXT, True))
        if instruction_ids is not None:
            seg.append(self.id_segment(instruction_ids, TYPE_INSTRUCTION))
        for m in order:
            if m == "image":
                seg.append((IMAGE, image[0], image[1], TYPE_IMAGE, False))
            elif m == "box":
                seg.append((REGION, regions[0], regions[1], TYPE_REGION, False))
            elif m == "location":
                seg.append((LOCATION, location[0], location[1], TYPE_LOCATION, False))
            elif m == "text":
                seg.append(self.id_segment(text_ids, TYPE_TEXT))
        if suffix_ids:
            seg.append(self.id_segment(suffix_ids, TYPE_TEXT, True))
        self.items.append(seg)

    def lengths(self) -> list[int]:
        return [sum(s[2] for s in seg) for seg in self.items]


def arrange(layout: Layout, block_rows: Sequence[int], padding_side: str = "right", region_pooling: str = "regions",
            pool_instruction: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row index, token types, attention mask, pooling mask), each (B, T) with T the longest item; ``block_rows``:
    the number of rows in each block (IDS first). Row ``sum(block_rows)`` is the padding row."""
    offsets = np.cumsum([0, *block_rows])
    pad_row = int(offsets[-1])
    lengths = layout.lengths()
    B, T = len(layout.items), max(lengths)
    index = np.full((B, T), pad_row, dtype=np.int64)
    types = np.zeros((B, T), dtype=np.int64)
    attn = np.zeros((B, T), dtype=np.int64)
    pool_mask = np.zeros((B, T), dtype=np.float32)
    for b, seg in enumerate(layout.items):
        start = T - lengths[b] if padding_side == "left" else 0
        pos = start
        # region_pooling "regions": an item with boxes stands for the marked region, so the mean runs
        # over its region tokens (which attend to the whole image) and its own text only, not over the
        # image tokens or the sequence's wrapper tokens ([CLS]/[SEP]) that summarise the whole scene
        region_item = region_pooling == "regions" and any(s[3] == TYPE_REGION for s in seg)
        for block, row, n, typ, wrapper in seg:
            index[b, pos:pos + n] = np.arange(offsets[block] + row, offsets[block] + row + n)
            types[b, pos:pos + n] = typ
            skip = typ == TYPE_INSTRUCTION and not pool_instruction
            skip |= region_item and (typ == TYPE_IMAGE or wrapper)
            if not skip:
                pool_mask[b, pos:pos + n] = 1.0
            pos += n
        attn[b, start:pos] = 1
    return index, types, attn, pool_mask


def adaptive_avg_pool(fmap: np.ndarray, grid: int) -> np.ndarray:
    """(B, C, h, w) -> (B, C, grid, grid): the mean over each cell's window, windows as torch's
    ``adaptive_avg_pool2d`` draws them (cell i covers floor(i h / g) .. ceil((i + 1) h / g))."""
    h, w = fmap.shape[2:]
    rows = [(i * h // grid, -(-(i + 1) * h // grid)) for i in range(grid)]
    cols = [(j * w // grid, -(-(j + 1) * w // grid)) for j in range(grid)]
    out = np.empty((*fmap.shape[:2], grid, grid), dtype=fmap.dtype)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            out[:, :, i, j] = fmap[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out
