"""Whole-item graphs of the dual-path model: a text-only or image-only item from its integer layout to the model's
embedding in one graph, so the exported-graph runtime (:mod:`geovec.models.graph_model`) embeds the commonest
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

:func:`ensure_items` exports them once, checks them against torch and writes the manifest
:class:`~geovec.models.graph_model.GraphModel` opens without torch: ``<cache>/onnx/items/<key>/`` with ``text.onnx``,
``image.onnx``, ``tokenizer.json`` and ``manifest.json``; ``key`` hashes the model's trained tensors and config and
the stage graphs' fingerprints, so another checkpoint gets its own. The manifest also names the vision stage graph
the image path runs first.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.models.graph_model import MANIFEST_FORMAT, GraphModel, graph_item, read_manifest
from geovec.models.sequence import gather, image_rows_from_grid
from geovec.models.text_top import sentence_vectors
from geovec.runtime import export as ex

ITEM_GRAPH_FORMAT = 1  # bump when what an item graph computes changes
ITEMS_KEPT = 4  # item-graph folders kept in the cache (about 200 MB each), the most recently used

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


class ItemGraph(nn.Module):
    """An item graph: a forward pass over ``model``'s own steps (the model is held, not copied)."""

    def __init__(self, model):
        super().__init__()
        self.model = model


class TextItems(ItemGraph):
    def forward(self, ids, index, types, attn, pool_mask, g_ids, g_mask):
        m = self.model
        enc = m.encoder
        embeds = gather([enc.backbone.embed_tokens(ids)], index)
        encoder = F.normalize(enc.project(enc.pool_sequence(embeds, types, attn, pool_mask, text_only=True)), dim=-1)
        states = m.global_path.text_states_fn()(g_ids, g_mask)
        glob = F.normalize(sentence_vectors(states, g_mask), dim=-1)  # the global path's sum of one unit part
        return m.combine(glob, encoder)


class ImageItems(ItemGraph):
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


CHECK_TEXTS = ("storage tanks next to a harbour", "a long runway beside the terminal with many parked aircraft",
               "Farmland, 2 fields; NO roads — 3 ponds.", "ö " * 300)


def items_dir(model, prints: dict[str, str]) -> Path:
    h = hashlib.sha256(f"geovec-items/{ITEM_GRAPH_FORMAT}/{ex.EXPORT_FORMAT}/{ex.model_fingerprint(model)}".encode())
    for g in sorted(prints):
        h.update(f"{g}:{prints[g]}".encode())
    return ex.cache_dir() / "onnx" / "items" / h.hexdigest()[:20]


def manifest_of(model, graphs: dict[str, str], tokenizer: Path) -> dict:
    enc, glob = model.encoder, model.global_path
    bb, cfg, tok = enc.backbone, model.config, enc.backbone.tokenizer
    return {"format": MANIFEST_FORMAT, "checkpoint": str(getattr(model, "source_dir", "") or ""),
            "graphs": graphs, "tokenizer": str(tokenizer), "embed_dim": int(model.embed_dim),
            "prefix_ids": list(bb.prefix_ids), "suffix_ids": list(bb.suffix_ids), "padding_side": bb.padding_side,
            "pad_id": int(tok.pad_token_id), "cls_id": int(tok.cls_token_id), "sep_id": int(tok.sep_token_id),
            "max_text_tokens": cfg.max_text_tokens, "max_instruction_tokens": cfg.max_instruction_tokens,
            "global_max_tokens": glob.max_text_tokens, "region_pooling": cfg.region_pooling,
            "pool_instruction": bool(cfg.pool_instruction), "image_grid": cfg.image_grid,
            "image_min_size": cfg.image_min_size, "image_max_size": cfg.image_max_size, "stride": enc.vision.stride,
            "input_scaling": list(type(enc.vision).INPUT_SCALING), "global_image_size": glob.image_size}


def check_items() -> list:
    """Items the check compares: texts (punctuation, one past every reading length), images at the faithfulness
    sizes, both with and without an instruction."""
    from geovec.inputs import parse_items
    from geovec.runtime.backends import faithfulness_items

    images = [it for it in faithfulness_items() if not isinstance(it, (str, dict))]
    raw = [*CHECK_TEXTS, *images, {"text": "a harbour", "instruction": "Find the image."},
           {"image": images[0], "instruction": "Represent this image."}]
    items = parse_items(raw)
    assert all(graph_item(it) for it in items)
    return items


def ensure_items(model, log=None) -> Path | None:
    """The manifest of ``model``'s item graphs (exported and checked now where not yet), or None where the model
    has none, its backend is not ONNX fp32, or the graphs do not match torch (cosine >= the fp32 threshold)."""
    from geovec.runtime.backends import FAITHFUL_COSINE, attach

    runner = getattr(model, "runner", None)
    if not supports_item_graphs(model) or runner is None or runner.label != "onnx" or "vision" not in runner.paths:
        return None
    prints = {g: ex.fingerprint(model, g) for g in ex.model_graphs(model)}
    folder = items_dir(model, prints)
    manifest_path = folder / "manifest.json"
    if read_manifest(manifest_path) is not None:
        return manifest_path
    shutil.rmtree(folder, ignore_errors=True)  # a manifest whose files are gone (or none): export again
    if log:
        log(f"geovec: exporting the whole-item graphs once (cached in {folder})")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        attach(model, None)  # trace the torch steps
        inputs = examples(model)
        graphs = {name: str(ex.export_module(module, inputs[name], SIGNATURES[name], tmp / f"{name}.onnx"))
                  for name, module in item_modules(model).items()}
    finally:
        attach(model, runner)
    model.encoder.backbone.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
    # the files' final names in the manifest: the folder is renamed into place once the check passed
    final = {g: str(folder / Path(p).name) for g, p in graphs.items()}
    manifest = manifest_of(model, {**final, "vision": str(runner.paths["vision"])}, folder / "tokenizer.json")
    probe = GraphModel({**manifest, "graphs": {**graphs, "vision": str(runner.paths["vision"])},
                        "tokenizer": str(tmp / "tokenizer.json")}, model.config, lambda: model)
    items = check_items()
    got = probe.encode_resolved(items, batch_size=8)
    attach(model, None)
    try:
        ref = model.encode_resolved(items, batch_size=8)
    finally:
        attach(model, runner)
    cos = np.sum(ref * got, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    manifest["check"] = {"min_cosine": float(cos.min()), "n_items": len(items),
                         "max_abs_diff": float(np.abs(ref - got).max())}
    if cos.min() < FAITHFUL_COSINE:
        if log:
            log(f"geovec: the whole-item graphs reach cosine {cos.min():.6f} with torch, below {FAITHFUL_COSINE}; "
                "not used")
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    ex.write_json(tmp / "manifest.json", manifest)
    try:
        tmp.rename(folder)
    except OSError:  # another process put the same folder in place first
        shutil.rmtree(tmp, ignore_errors=True)
    prune(folder.parent, keep=ITEMS_KEPT)
    return manifest_path if manifest_path.is_file() else None


def prune(root: Path, keep: int = ITEMS_KEPT) -> list[Path]:
    """Remove all but the ``keep`` most recently used item-graph folders under ``root`` (a load touches its
    manifest); a stamp naming a removed folder loads the torch model and makes them again. Returns what it removed."""
    def used(d: Path) -> float:
        try:
            return (d / "manifest.json").stat().st_mtime
        except OSError:
            return 0.0

    done = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.endswith(".tmp")), key=used, reverse=True)
    for d in done[keep:]:
        shutil.rmtree(d, ignore_errors=True)
    return done[keep:]
