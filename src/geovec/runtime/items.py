"""The whole-item graphs of a loaded model (:mod:`geovec.models.item_graphs`), exported once, checked against torch
and described in a manifest that :class:`~geovec.runtime.graph_model.GraphModel` opens without torch.

Files: ``<cache>/onnx/items/<key>/`` with ``text.onnx``, ``image.onnx``, ``tokenizer.json`` and ``manifest.json``;
``key`` hashes the model's trained tensors and config and the stage graphs' fingerprints, so another checkpoint
gets its own. The manifest also names the vision stage graph the image path runs first.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from geovec.runtime import export as ex
from geovec.runtime.graph_model import MANIFEST_FORMAT, GraphModel, graph_item

CHECK_TEXTS = ("storage tanks next to a harbour", "a long runway beside the terminal with many parked aircraft",
               "Farmland, 2 fields; NO roads — 3 ponds.", "ö " * 300)


def items_dir(model, prints: dict[str, str]) -> Path:
    from geovec.models.item_graphs import ITEM_GRAPH_FORMAT

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
    """Items the check compares: texts (punctuation, one past every reading length), images at the faithfulness sizes, both with and
    without an instruction."""
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
    from geovec.models.item_graphs import SIGNATURES, examples, item_modules, supports_item_graphs
    from geovec.runtime.backends import FAITHFUL_COSINE, attach

    runner = getattr(model, "runner", None)
    if not supports_item_graphs(model) or runner is None or runner.label != "onnx" or "vision" not in runner.paths:
        return None
    prints = {g: ex.fingerprint(model, g) for g in ex.model_graphs(model)}
    folder = items_dir(model, prints)
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        return manifest_path
    if log:
        log(f"geovec: exporting the whole-item graphs once (cached in {folder})")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        attach(model, None)  # trace the torch steps
        graphs = {name: str(ex.export_module(module, examples(model)[name], SIGNATURES[name],
                                             tmp / f"{name}.onnx"))
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
    return manifest_path if manifest_path.is_file() else None
