"""How an index embeds its chips: the one routine the local build and the Ray actors both run, so both give
identical vectors, and what those vectors mean (:class:`~geovec.index.store.IndexInfo`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from geovec.index.chips import Chip, ChipSpec, read_chip
from geovec.index.store import IndexInfo
from geovec.inputs import GeoVecInputError


def chip_modalities(with_location: bool) -> tuple[str, ...]:
    """What a chip's item holds: its pixels, and its centre when the index embeds locations."""
    return ("image", "location") if with_location else ("image",)


def index_info(model, spec: ChipSpec, task: str = "retrieval", with_location: bool = False) -> IndexInfo:
    """What the vectors of a build with ``model`` mean; the document instruction is the model's own."""
    instruction = model.instruction_for(chip_modalities(with_location), task=task, side="document")
    return IndexInfo(model_id=model.model_id, revision=model.revision, dimension=int(model.embed_dim),
                     task=task, instruction=instruction, with_location=with_location, chip_size=spec.size,
                     chip_overlap=spec.overlap, bands=list(spec.bands) if spec.bands else None,
                     embed_size=spec.resize)


def chip_item(chip: Chip, pixels: np.ndarray, with_location: bool) -> dict:
    """The interleaved item embedded for a chip: its pixels, plus its centre when ``with_location``."""
    item: dict = {"image": pixels}
    if with_location and chip.centre_lat is not None:
        item.update(lat=chip.centre_lat, lon=chip.centre_lon)
    return item


def resized(pixels: np.ndarray, size: int | None) -> np.ndarray:
    """``pixels`` (H, W, C uint8) with the longer side resized to ``size`` (bicubic, aspect kept); as given for None."""
    if size is None:
        return pixels
    from geovec.models.single_encoder import target_size  # the models' resize rule, without the stride rounding

    h, w = pixels.shape[:2]
    target = target_size(w, h, size, size, stride=1)
    if target == (w, h):
        return pixels
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize(target, Image.BICUBIC))


@dataclass
class ReadChips:
    """Chips read and ready to embed: ``ok`` with their ``pixels`` and ``nodata`` fraction, ``failed`` by id."""

    ok: list[Chip] = field(default_factory=list)
    pixels: list[np.ndarray] = field(default_factory=list)
    nodata: list[float] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def read_chips(chips: Sequence[Chip], embed_size: int | None, read_threads: int = 2,
               pool: ThreadPoolExecutor | None = None) -> ReadChips:
    """Read (windowed) and resize ``chips`` in ``read_threads`` threads (GDAL decodes without the GIL; ``pool``:
    threads of the caller's to use). Each thread reads a contiguous run of chips, so neighbouring windows share
    its open file and decoded tiles."""
    def load(chip: Chip):
        try:
            img = read_chip(chip, georef=False)
            return resized(img.pixels, embed_size), img.nodata_fraction, None
        except GeoVecInputError as e:
            return None, None, e.problem

    def load_run(run: Sequence[Chip]):
        return [load(c) for c in run]

    n = max(1, min(read_threads, len(chips)))
    step = -(-len(chips) // n) if chips else 1
    runs = [chips[i : i + step] for i in range(0, len(chips), step)]
    if pool is not None:  # the caller's threads (a build keeps the same few for all its steps)
        loaded = [r for run in pool.map(load_run, runs) for r in run]
    else:
        with ThreadPoolExecutor(max_workers=n) as own:
            loaded = [r for run in own.map(load_run, runs) for r in run]
    out = ReadChips()
    for c, (px, nodata, err) in zip(chips, loaded):
        if px is None:
            out.failed[c.id] = err
        else:
            out.ok.append(c)
            out.pixels.append(px)
            out.nodata.append(nodata)
    return out


def encode_chips(model, read: ReadChips, info: IndexInfo, batch_size: int = 32) -> np.ndarray:
    """(M, D) float32 vectors of the chips ``read`` holds, embedded as ``info`` says."""
    if not read.ok:
        return np.zeros((0, info.dimension), np.float32)
    items = [chip_item(c, px, info.with_location) for c, px in zip(read.ok, read.pixels)]
    # one forward batch per call: the model prepares only those items' tensors at a time (peak memory)
    parts = [model.encode(items[i : i + batch_size], task=info.task, side="document", batch_size=batch_size,
                          show_progress_bar=False, normalize=info.normalized)
             for i in range(0, len(items), batch_size)]
    return np.concatenate([np.asarray(p, np.float32) for p in parts])


def embed_chips(model, chips: Sequence[Chip], info: IndexInfo, batch_size: int = 32,
                read_threads: int = 2) -> tuple[np.ndarray, ReadChips]:
    """Read and embed ``chips`` -> (vectors (M, D) float32, the :class:`ReadChips`: the M chips that succeeded,
    their nodata fractions, {chip id: problem} of the others).

    The single place both the local build and the Ray actors embed chips, so both give identical vectors.
    """
    read = read_chips(chips, info.embed_size, read_threads)
    return encode_chips(model, read, info, batch_size), read
