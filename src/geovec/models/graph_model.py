"""A model that runs on its exported graphs alone: ``load_model()`` without torch or transformers.

Once a load of a checkpoint has been checked (:mod:`geovec.runtime.load_stamp`) with the ONNX backend, its whole-item
graphs (:mod:`geovec.models.item_graphs`: text-only and image-only items) are exported and compared with torch
(:func:`geovec.models.item_graphs.ensure_items`). A later ``load_model()`` of the same checkpoint returns a
:class:`GraphModel`: tokenizer (``tokenizers``), token layout (:mod:`geovec.models.layout`), image decode and resize
(:mod:`geovec.models.pixels`) and onnxruntime (:mod:`geovec.runtime.runners`); nothing imports torch until
something needs it.

It has the encode API of every geovec model (:class:`~geovec.models.contract.EncodeAPI`). Items it has no graph
for (boxes, places, image with text, ...), and anything else asked of the model (its modules, training, another
device, tensors), load the torch model once, and from then on everything runs there as on a plain torch load.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from geovec.inputs import GeoVecInputError, Item, read_image
from geovec.models.config import GeoVecConfig
from geovec.models.contract import EncodeAPI, l2_normalize
from geovec.models.instructions import global_half_weight
from geovec.models.layout import Layout, adaptive_avg_pool, arrange
from geovec.models.pixels import resize_to, scaled_input, target_size
from geovec.runtime.runners import OnnxRuntimeRunner

MANIFEST_FORMAT = 1


def graph_item(item: Item) -> str | None:
    """The item graph that embeds ``item`` (``text`` or ``image``), or None (the torch model does)."""
    if item.order == ("text",) and item.text is not None:
        return "text"
    if item.order == ("image",) and item.image is not None and not item.boxes:
        return "image"
    return None


def read_manifest(path: str | Path) -> dict | None:
    """The item-graph manifest at ``path``, or None where it or a file it names is gone or of another format. Reading
    it counts as a use (the cache keeps the most recently used: :func:`geovec.models.item_graphs.prune`)."""
    try:
        manifest = json.loads(Path(path).read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            return None
        if not all(Path(f).is_file() for f in [manifest["tokenizer"], *manifest["graphs"].values()]):
            return None
        os.utime(path)
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return manifest


class PreparedImage:
    """An image item ready for the graphs: the encoder's input, and the global path's own view where it is not
    that input."""

    __slots__ = ("instruction", "pixels", "view")

    def __init__(self, instruction, pixels, view):
        self.instruction, self.pixels, self.view = instruction, pixels, view


class GraphModel(EncodeAPI):
    """See the module docstring. Build with :meth:`open`."""

    def __init__(self, manifest: dict, config: GeoVecConfig, load_torch: Callable[[], Any], threads: int | None = None):
        self.__dict__.update(_manifest=manifest, config=config, _load_torch=load_torch, _torch=None,
                             _torch_lock=threading.Lock())
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(manifest["tokenizer"])
        tok.no_padding()
        tok.no_truncation()
        self.__dict__["_tokenizer"] = tok
        self.__dict__["_runner"] = OnnxRuntimeRunner({g: Path(p) for g, p in manifest["graphs"].items()},
                                                     threads=threads, lazy=True)

    @classmethod
    def open(cls, manifest_path: str | Path, config_dir: str | Path, load_torch: Callable[[], Any],
             threads: int | None = None) -> "GraphModel | None":
        """The model of a manifest written by :func:`geovec.models.item_graphs.ensure_items`; None where it or a file it
        names is gone or of another format."""
        manifest = read_manifest(manifest_path)
        if manifest is None:
            return None
        try:
            return cls(manifest, GeoVecConfig.from_json(Path(config_dir) / "config.json"), load_torch, threads)
        except (OSError, ValueError, KeyError, ImportError):
            return None

    # --- the torch model, loaded once when something needs it ------------------------------------------------------
    @property
    def torch_model(self):
        """The torch model of the same checkpoint (loaded on first use; the backend it attaches is the one asked
        for)."""
        if self._torch is None:
            with self._torch_lock:
                if self._torch is None:
                    self.__dict__["_torch"] = self._load_torch()
        return self._torch

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_torch", "_manifest", "_load_torch", "_torch_lock"):
            raise AttributeError(name)
        return getattr(self.torch_model, name)

    def __repr__(self) -> str:
        return f"GraphModel({self.config.name}@{self.config.revision}, backend={self.backend})"

    # --- identity ----------------------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self._manifest["embed_dim"])

    @property
    def stage_seconds(self) -> dict[str, float]:
        """Seconds spent waiting for preparation and in forward passes, on the graphs and in the torch model."""
        own = super().stage_seconds
        if self._torch is not None:
            for k, v in self._torch.stage_seconds.items():
                own[k] = own.get(k, 0.0) + v
        return own

    @property
    def backend(self) -> str:
        return self._torch.backend if self._torch is not None else self._runner.label

    @property
    def source_dir(self):
        return Path(self._manifest["checkpoint"])

    # --- the encode API -------------------------------------------------------------------------------------------------
    def move_to(self, device) -> None:
        self.torch_model.move_to(device)

    def as_tensors(self, out: np.ndarray, single: bool, stacked: bool):
        return self.torch_model.as_tensors(out, single, stacked)

    def encode_resolved(self, items: Sequence[Item], batch_size: int = 32, show_progress_bar: bool | None = None,
                        normalize: bool = True, num_workers: int | None = None,
                        errors: dict[int, GeoVecInputError] | None = None) -> np.ndarray:
        if self._torch is not None or any(graph_item(it) is None or self._reweighted(it) for it in items):
            return self.torch_model.encode_resolved(items, batch_size, show_progress_bar, normalize, num_workers,
                                                    errors)
        from geovec.models.encode_loop import encode_items

        return encode_items(self, items, batch_size, show_progress_bar, normalize, num_workers, errors,
                            prepare=self._prepare)

    def _reweighted(self, item: Item) -> bool:
        """Whether ``item``'s instruction gives its global half a weight of its own (the dual-path model's
        ``query_weights``): the graphs bake in the weight 1, so the torch model embeds it."""
        return global_half_weight(self.config, item.instruction) != 1.0

    # the encode loop's side (geovec.models.encode_loop)
    def inference_scope(self, inference: bool = True):
        return contextlib.nullcontext()

    def cpu_threads(self) -> int:
        return self._runner.threads

    def _prepare(self, item: Item):
        """An item as the graphs read it (the public ``prepare`` is the torch model's, for its ``embed_prepared``)."""
        if item.image is None:
            return item
        m = self._manifest
        raster = read_image(item.image)
        w, h = target_size(raster.width, raster.height, m["image_min_size"], m["image_max_size"], m["stride"])
        pixels = scaled_input(resize_to(raster.pixels, w, h), *m["input_scaling"])
        view = None
        if max(w, h) != m["global_image_size"]:  # the global path's own view (else the encoder's input is that view)
            size = m["global_image_size"]
            gw, gh = target_size(raster.width, raster.height, size, size, m["stride"])
            view = scaled_input(resize_to(raster.pixels, gw, gh), *m["input_scaling"])
        return PreparedImage(item.instruction, pixels, view)

    def batch_key(self, prepared) -> tuple:
        if isinstance(prepared, PreparedImage):
            return (0, prepared.pixels.shape, None if prepared.view is None else prepared.view.shape)
        if isinstance(prepared, Item):
            return (1, len(prepared.text or ""))
        return self.torch_model.batch_key(prepared)  # an item the torch model prepared

    def embed_rows(self, prepared: Sequence[Any], normalize: bool = True, embed=None) -> np.ndarray:
        images = [i for i, p in enumerate(prepared) if isinstance(p, PreparedImage)]
        texts = [i for i, p in enumerate(prepared) if not isinstance(p, PreparedImage)]
        out = np.empty((len(prepared), self.embed_dim), dtype=np.float32)
        for idx, run in ((texts, self._embed_texts), (images, self._embed_images)):
            if idx:
                out[idx] = run([prepared[i] for i in idx])
        return l2_normalize(out) if normalize else out

    # --- the graphs ----------------------------------------------------------------------------------------------------
    def _ids(self, texts: Sequence[str], max_tokens: int) -> dict[str, list[int]]:
        distinct = sorted(set(texts))
        return {t: e.ids[:max_tokens] for t, e in zip(distinct, self._tokenizer.encode_batch(
            distinct, add_special_tokens=False))}

    def _layout(self, items: Sequence[Any], text_ids: dict | None, n_image_tokens: int = 0) -> Layout:
        m = self._manifest
        instr = self._ids([p.instruction for p in items if p.instruction is not None], m["max_instruction_tokens"])
        lay = Layout()
        for b, p in enumerate(items):
            text = text_ids[p.text] if text_ids is not None else None
            lay.add_item(("text",) if text_ids is not None else ("image",), m["prefix_ids"], m["suffix_ids"],
                         instruction_ids=instr[p.instruction] if p.instruction is not None else None, text_ids=text,
                         image=(b * n_image_tokens, n_image_tokens) if n_image_tokens else None)
        return lay

    def _arrays(self, lay: Layout, block_rows: list[int]) -> list[np.ndarray]:
        m = self._manifest
        index, types, attn, pool_mask = arrange(lay, block_rows, m["padding_side"], m["region_pooling"],
                                                m["pool_instruction"])
        return [np.asarray(lay.ids, dtype=np.int64), index, types, attn, pool_mask]

    def _embed_texts(self, items: Sequence[Item]) -> np.ndarray:
        m = self._manifest
        texts = [p.text for p in items]
        lay = self._layout(items, self._ids(texts, m["max_text_tokens"]))
        ids, index, types, attn, pool_mask = self._arrays(lay, [len(lay.ids)])
        # the global path's sentence: the tokenizer's own special tokens, its reading length
        sent = self._ids(texts, m["global_max_tokens"] - 2)
        rows = [[m["cls_id"], *sent[t], m["sep_id"]] for t in texts]
        width = max(map(len, rows))
        g_ids = np.full((len(rows), width), m["pad_id"], dtype=np.int64)
        g_mask = np.zeros((len(rows), width), dtype=np.int64)
        for b, r in enumerate(rows):
            g_ids[b, :len(r)] = r
            g_mask[b, :len(r)] = 1
        return self._runner.run("text", ids, index, types, attn, pool_mask, g_ids, g_mask)

    def _embed_images(self, items: Sequence[PreparedImage]) -> np.ndarray:
        m = self._manifest
        grid = m["image_grid"]
        out = np.empty((len(items), self.embed_dim), dtype=np.float32)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(items):
            groups.setdefault((p.pixels.shape, None if p.view is None else p.view.shape), []).append(i)
        for idx in groups.values():
            fmap = self._runner.run("vision", np.stack([items[i].pixels for i in idx]))
            views = [items[i].view for i in idx]
            gmap = fmap if views[0] is None else self._runner.run("vision", np.stack(views))
            lay = self._layout([items[i] for i in idx], None, grid * grid)
            ids, index, types, attn, pool_mask = self._arrays(lay, [len(lay.ids), len(idx) * grid * grid])
            out[idx] = self._runner.run("image", ids, adaptive_avg_pool(fmap, grid), gmap.mean(axis=(2, 3)), index,
                                        types, attn, pool_mask)
        return out
