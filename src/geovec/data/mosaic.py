"""Mosaics: several real images placed at random sizes and positions on one canvas.

Each placed image is a *region* with its pixel box on the canvas, its captions and its class, so region-level
tasks (region captioning, referring expressions, box -> class) can be built from any captioned or classified
image collection. The benchmark builds its dev mosaics from RSICD ``val`` images; training builds its own from
``train`` images with the same function::

    from geovec.data.mosaic import build_mosaics
    mosaics = build_mosaics(samples, n_mosaics=1000, seed=0, canvas_size=448)
    pixels = mosaics[0].render()            # (H, W, 3) uint8
    for r in mosaics[0].regions:
        r.box, r.captions, r.class_name     # box: pixel xyxy on the canvas

Input samples are dicts with ``image`` (path, PIL image or (H, W, 3) array) and optionally ``captions``
(list of str), ``class_name``, ``prompt_name`` and any other keys (kept in ``Region.meta``). Everything is
decided by ``seed`` and the order of ``samples``: the same call gives the same mosaics (boxes, sources, and
bytes of ``render()``). Regions never overlap; every source image is used at most once per call while unused
images remain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from geovec.inputs import read_image
from geovec.inputs.raster import image_size

Box = tuple[int, int, int, int]
DEFAULT_BACKGROUND = (116, 116, 116)


@dataclass
class Region:
    """One placed image. ``box``: pixel xyxy on the mosaic canvas (x2, y2 exclusive)."""

    box: Box
    source: str
    captions: list[str] = field(default_factory=list)
    class_name: str | None = None
    prompt_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mosaic:
    """A canvas of ``size`` = (width, height) pixels with non-overlapping ``regions``; ``free_boxes`` are slots
    kept empty on purpose (for edits such as :func:`add_region`)."""

    id: str
    size: tuple[int, int]
    regions: list[Region]
    background: tuple[int, int, int] = DEFAULT_BACKGROUND
    free_boxes: list[Box] = field(default_factory=list)

    def render(self) -> np.ndarray:
        """Pixels (H, W, 3) uint8: background colour, each source resized (bicubic) into its box."""
        w, h = self.size
        canvas = Image.new("RGB", (w, h), tuple(self.background))
        for r in self.regions:
            x1, y1, x2, y2 = r.box
            src = Image.fromarray(read_image(r.source).pixels)
            canvas.paste(src.resize((x2 - x1, y2 - y1), Image.BICUBIC), (x1, y1))
        return np.asarray(canvas)

    def save(self, path: str | Path) -> Path:
        """Write the rendered canvas as PNG (lossless, so the pixels are exactly :meth:`render`'s)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.render()).save(path, format="PNG")
        return path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Mosaic":
        regions = [Region(box=tuple(r["box"]), source=r["source"], captions=list(r["captions"]),
                          class_name=r.get("class_name"), prompt_name=r.get("prompt_name"), meta=r.get("meta", {}))
                   for r in d["regions"]]
        return cls(id=d["id"], size=tuple(d["size"]), regions=regions, background=tuple(d["background"]),
                   free_boxes=[tuple(b) for b in d.get("free_boxes", [])])


def _overlaps(a: Box, b: Box, gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def place_box(rng: np.random.Generator, canvas: tuple[int, int], aspect: float, side_range: tuple[int, int],
              taken: Sequence[Box], gap: int = 4, tries: int = 200) -> Box | None:
    """A random box (longer side drawn from ``side_range`` pixels, ``aspect`` = width / height kept) that lies
    inside the canvas and keeps ``gap`` pixels from every box in ``taken``; shrinks the side range when the
    canvas is crowded; None if nothing fits."""
    lo, hi = side_range
    cw, ch = canvas
    for attempt in range(tries):
        # after every 50 failed tries, allow smaller boxes
        shrink = 0.8 ** (attempt // 50)
        side = int(rng.integers(max(8, int(lo * shrink)), max(9, int(hi * shrink)) + 1))
        w, h = (side, max(1, round(side / aspect))) if aspect >= 1 else (max(1, round(side * aspect)), side)
        if w > cw or h > ch:
            continue
        x = int(rng.integers(0, cw - w + 1))
        y = int(rng.integers(0, ch - h + 1))
        box = (x, y, x + w, y + h)
        if not any(_overlaps(box, t, gap) for t in taken):
            return box
    return None


def _source_str(image: Any) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    raise TypeError("mosaic sources must be image file paths (mosaics are rebuilt from their sources by path)")


def build_mosaics(
    samples: Sequence[dict[str, Any]],
    n_mosaics: int,
    seed: int = 0,
    canvas_size: int | tuple[int, int] = 448,
    regions_per_mosaic: tuple[int, int] = (3, 5),
    side_range: tuple[int, int] = (96, 208),
    distinct_classes: bool = True,
    free_slots: int = 0,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    id_prefix: str = "mosaic",
) -> list[Mosaic]:
    """Build ``n_mosaics`` mosaics from ``samples`` (dicts with an image *path* under ``image``).

    ``regions_per_mosaic``: inclusive range of placed images per mosaic. ``side_range``: inclusive range of
    the longer side of a placed image, in canvas pixels. ``distinct_classes``: no two regions of one mosaic
    share a ``class_name`` (so "the <class> region" is unambiguous). ``free_slots``: extra empty boxes reserved
    per mosaic (:attr:`Mosaic.free_boxes`) for later edits. Deterministic in ``seed`` and sample order.
    """
    if n_mosaics < 0:
        raise ValueError("n_mosaics must be >= 0")
    lo_n, hi_n = regions_per_mosaic
    if not 1 <= lo_n <= hi_n:
        raise ValueError("regions_per_mosaic must be (min, max) with 1 <= min <= max")
    if not samples:
        raise ValueError("no source images to build mosaics from")
    canvas = (canvas_size, canvas_size) if isinstance(canvas_size, int) else tuple(canvas_size)
    rng = np.random.default_rng(seed)
    pool: list[int] = []
    mosaics: list[Mosaic] = []
    sizes: dict[int, tuple[int, int]] = {}

    def next_index(exclude_classes: set) -> int | None:
        nonlocal pool
        if not pool:
            pool = list(rng.permutation(len(samples)))
        for k, idx in enumerate(pool):
            if not distinct_classes or samples[idx].get("class_name") not in exclude_classes:
                return pool.pop(k)
        return None

    for m in range(n_mosaics):
        n_regions = int(rng.integers(lo_n, hi_n + 1))
        taken: list[Box] = []
        regions: list[Region] = []
        classes: set = set()
        for _ in range(n_regions):
            idx = next_index(classes)
            if idx is None:
                break
            s = samples[int(idx)]
            if idx not in sizes:
                sizes[idx] = image_size(s["image"])
            w, h = sizes[idx]
            box = place_box(rng, canvas, w / h, side_range, taken)
            if box is None:
                pool.append(idx)
                break
            taken.append(box)
            classes.add(s.get("class_name"))
            meta = {k: v for k, v in s.items() if k not in ("image", "captions", "class_name", "prompt_name")}
            regions.append(Region(box=box, source=_source_str(s["image"]), captions=list(s.get("captions", [])),
                                  class_name=s.get("class_name"), prompt_name=s.get("prompt_name"),
                                  meta=_jsonable(meta)))
        free: list[Box] = []
        for _ in range(free_slots):
            box = place_box(rng, canvas, 1.0, side_range, taken + free)
            if box is not None:
                free.append(box)
        mosaics.append(Mosaic(id=f"{id_prefix}-{seed}-{m:05d}", size=canvas, regions=regions,
                              background=tuple(background), free_boxes=free))
    return mosaics


def add_region(mosaic: Mosaic, sample: dict[str, Any], box: Box | None = None, suffix: str = "") -> Mosaic:
    """The same mosaic with ``sample`` placed in ``box`` (default: its first free slot, resized to fit)."""
    if box is None:
        if not mosaic.free_boxes:
            raise ValueError(f"mosaic {mosaic.id} has no free slot")
        box = mosaic.free_boxes[0]
    if any(_overlaps(tuple(box), r.box, 0) for r in mosaic.regions):
        raise ValueError(f"box {box} overlaps a region of mosaic {mosaic.id}")
    region = Region(box=tuple(box), source=_source_str(sample["image"]), captions=list(sample.get("captions", [])),
                    class_name=sample.get("class_name"), prompt_name=sample.get("prompt_name"))
    free = [b for b in mosaic.free_boxes if tuple(b) != tuple(box)]
    return Mosaic(id=mosaic.id + (suffix or f"+{region.class_name}"), size=mosaic.size,
                  regions=mosaic.regions + [region], background=mosaic.background, free_boxes=free)


COMPOSED_TEMPLATE = "the same scene with an added {name} region"


def composed_edits(bases: Sequence[Mosaic], samples: Sequence[dict[str, Any]], variants: int,
                   rng: np.random.Generator) -> tuple[list[Mosaic], list[tuple[int, str]]]:
    """Edits for compositional retrieval: for each base with a free slot, ``variants`` copies with an image of a
    class absent from it placed in the slot (:func:`add_region`; one class per copy, images may recur across
    bases). Returns (edits, [(base index, the added image's prompt name)] per edit). The dev task
    (``dev-mosaic-composed``) and the training pairs (:func:`geovec.train.mosaics.composed_examples`) are
    both built by it."""
    by_class: dict[str, list[dict]] = {}
    for s in samples:
        by_class.setdefault(s["class_name"], []).append(s)
    edits: list[Mosaic] = []
    meta: list[tuple[int, str]] = []
    for b, m in enumerate(bases):
        if not m.free_boxes:
            continue
        present = {r.class_name for r in m.regions}
        options = sorted(c for c in by_class if c not in present)
        chosen = [options[i] for i in rng.permutation(len(options))[:variants]]
        for c in chosen:
            s = by_class[c][int(rng.integers(len(by_class[c])))]
            edits.append(add_region(m, s))
            meta.append((b, s["prompt_name"]))
    return edits, meta


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()
            if isinstance(v, (str, int, float, bool, Path, type(None)))}


def mosaics_fingerprint(mosaics: Sequence[Mosaic]) -> str:
    """A short hash of the mosaics' layout and sources (cache key)."""
    return hashlib.sha256(json.dumps([m.to_dict() for m in mosaics], sort_keys=True).encode()).hexdigest()[:16]
