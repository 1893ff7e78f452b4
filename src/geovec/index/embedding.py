"""How an index embeds its chips: the one routine the local build and the Ray actors both run, so both give
identical vectors, and what those vectors mean (:class:`~geovec.index.store.IndexInfo`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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


def embed_chips(model, chips: Sequence[Chip], info: IndexInfo, batch_size: int = 32,
                read_threads: int = 2) -> tuple[np.ndarray, list[Chip], dict[str, str]]:
    """Read and embed ``chips`` -> (vectors (M, D) float32, the M chips that succeeded, {chip id: problem}).

    The single place both the local build and the Ray actors embed chips, so both give identical vectors.
    """
    def load(chip: Chip):
        try:
            return resized(read_chip(chip).pixels, info.embed_size), None
        except GeoVecInputError as e:
            return None, e.problem

    with ThreadPoolExecutor(max_workers=max(1, read_threads)) as pool:
        loaded = list(pool.map(load, chips))
    ok = [(c, px) for c, (px, err) in zip(chips, loaded) if px is not None]
    failed = {c.id: err for c, (px, err) in zip(chips, loaded) if px is None}
    if not ok:
        return np.zeros((0, info.dimension), np.float32), [], failed
    items = [chip_item(c, px, info.with_location) for c, px in ok]
    vectors = model.encode(items, task=info.task, side="document", batch_size=batch_size, show_progress_bar=False,
                           normalize=info.normalized)
    return np.asarray(vectors, np.float32), [c for c, _ in ok], failed
