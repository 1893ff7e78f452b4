"""Region pairs from mosaics: several real images placed at random sizes and positions on one canvas.

Each placed image becomes a region with a pixel box (xyxy in the mosaic's frame), its captions and its class,
as in the RSMEB dev region tasks. Build training mosaics from TRAIN images only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from geovec.train.converters import class_prompts
from geovec.train.data import Example

BACKGROUND = (114, 114, 114)


@dataclass
class Region:
    box: tuple[int, int, int, int]  # pixel xyxy in the mosaic
    source: str
    captions: list[str]
    label: str | None = None


@dataclass
class Mosaic:
    path: str
    size: tuple[int, int]
    regions: list[Region]


def place_boxes(rng: np.random.Generator, canvas: int, count: int, min_side: int, max_side: int,
                tries: int = 200) -> list[tuple[int, int, int, int]]:
    """Non-overlapping square boxes on a ``canvas`` x ``canvas`` grid (rejection sampling)."""
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(tries):
        if len(boxes) == count:
            break
        s = int(rng.integers(min_side, max_side + 1))
        x, y = int(rng.integers(0, canvas - s + 1)), int(rng.integers(0, canvas - s + 1))
        b = (x, y, x + s, y + s)
        if all(b[2] <= o[0] or o[2] <= b[0] or b[3] <= o[1] or o[3] <= b[1] for o in boxes):
            boxes.append(b)
    return boxes


def build_mosaics(images: Sequence[tuple[str, list[str], str | None]], out_dir: str | Path, count: int,
                  seed: int = 0, canvas: int = 448, per_mosaic: tuple[int, int] = (3, 5),
                  side: tuple[int, int] = (96, 224)) -> list[Mosaic]:
    """``count`` mosaics from (image path, captions, class) triples, written as PNG under ``out_dir``.
    Deterministic for a seed; each source image is used at most once until all have been used."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    order = list(rng.permutation(len(images)))
    mosaics = []
    for m in range(count):
        k = int(rng.integers(per_mosaic[0], per_mosaic[1] + 1))
        boxes = place_boxes(rng, canvas, k, side[0], side[1])
        canvas_img = Image.new("RGB", (canvas, canvas), BACKGROUND)
        regions = []
        for b in boxes:
            if not order:
                order = list(rng.permutation(len(images)))
            path, caps, label = images[order.pop()]
            with Image.open(path) as im:
                tile = im.convert("RGB").resize((b[2] - b[0], b[3] - b[1]), Image.BICUBIC)
            canvas_img.paste(tile, (b[0], b[1]))
            regions.append(Region(b, str(path), list(caps), label))
        path = out_dir / f"mosaic_{seed}_{m:05d}.png"
        canvas_img.save(path)
        mosaics.append(Mosaic(str(path), (canvas, canvas), regions))
    return mosaics


def region_examples(mosaics: Sequence[Mosaic], with_class: bool = True) -> Iterator[Example]:
    """Per region: (mosaic + box) -> its captions (the mosaic's other regions' captions as hard negatives);
    (mosaic + caption) -> (mosaic + box) (the other boxes as hard negatives); optionally (mosaic + box) ->
    class name."""
    for mo in mosaics:
        for r, reg in enumerate(mo.regions):
            caps = [c for c in reg.captions if c.strip(" .")]
            if not caps:
                continue
            others = [o for o in mo.regions if o is not reg]
            group = f"{mo.path}#{r}"
            q = {"image": mo.path, "box": list(reg.box)}
            yield Example("region", q, [{"text": c} for c in caps],
                          [{"text": o.captions[0]} for o in others if o.captions and o.captions[0].strip(" .")],
                          group=group)
            for c in caps:
                yield Example("region", {"image": mo.path, "text": c}, [dict(q)],
                              [{"image": mo.path, "box": list(o.box)} for o in others], group=group)
            if with_class and reg.label:
                yield Example("region", q, [{"text": class_prompts(reg.label)[0]}], group=f"{group}:class")
