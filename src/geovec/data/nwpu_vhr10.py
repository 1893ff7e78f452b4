"""NWPU VHR-10: 10 object classes boxed in very-high-resolution Google Earth and Vaihingen images (0.08-2 m).

Official layout: ``positive_image_set/NNN.jpg``, ``ground_truth/NNN.txt`` (one object per line,
``(x1,y1),(x2,y2),c``: top-left and bottom-right corner in image pixels, ``c`` the class 1-10; some lines carry
spaces inside the brackets, ``( 68,316),(170,411),1``) and, in the release this project reads, the source
repository's ``image_set/train.txt`` (the image ids of its train split).

Splits: ``all`` = the ids of ``image_set/train.txt`` (every positive image when that file is absent); ``dev`` and
``train`` divide them by whole images with a fixed rule, :func:`is_dev_image`: an image is ``dev`` when the
first 8 hex digits of ``sha256(<image id>)``, as an integer over 2**32, fall below :data:`DEV_FRACTION` (0.2).
The rule depends on nothing but the id, so it never changes with what else is in the folder, and training
(``train``) never sees a ``dev`` image.

Cheng, Han, Zhou, Guo, "Multi-class geospatial object detection and geographic image classification based on
collection of part detectors", ISPRS JPRS 2014.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from PIL import Image

from geovec.data.base import Dataset

#: class number (1-based, as in the ground truth) - 1 -> readable name (the dataset's readme)
VHR10_CLASSES = ("airplane", "ship", "storage tank", "baseball diamond", "tennis court", "basketball court",
                 "ground track field", "harbor", "bridge", "vehicle")
DEV_FRACTION = 0.2
#: object-size bins by the square root of the box area in pixels (the COCO convention: 32 and 96 px)
SIZE_BINS = ((32.0, "<32 px"), (96.0, "32-96 px"), (float("inf"), ">96 px"))

_LINE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*(\d+)\s*$")


def is_dev_image(image_id: str) -> bool:
    """The dev part of the seeded whole-image split: ``sha256(id)``'s first 32 bits / 2**32 < :data:`DEV_FRACTION`."""
    return int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 2**32 < DEV_FRACTION


def size_bin(box) -> str:
    """The size bin of an ``[x1, y1, x2, y2]`` box by ``sqrt(area)``: ``<32 px``, ``32-96 px`` or ``>96 px``."""
    side = (max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])) ** 0.5
    return next(name for limit, name in SIZE_BINS if side < limit)


def parse_ground_truth(text: str, source: str = "ground truth") -> list[tuple[list[float], int]]:
    """``[([x1, y1, x2, y2], class 1-10), ...]`` from one ground-truth file; blank lines are skipped and any other
    line that is not ``(x1,y1),(x2,y2),c`` with ``x1 < x2``, ``y1 < y2`` and ``c`` in 1-10 is an error naming the
    file and line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if not m:
            raise ValueError(f"{source} line {n}: expected '(x1,y1),(x2,y2),class', got {line.strip()[:80]!r}")
        x1, y1, x2, y2, c = (int(g) for g in m.groups())
        if not 1 <= c <= len(VHR10_CLASSES):
            raise ValueError(f"{source} line {n}: class {c} is not in 1-{len(VHR10_CLASSES)}")
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"{source} line {n}: empty box ({x1},{y1}),({x2},{y2})")
        out.append(([float(x1), float(y1), float(x2), float(y2)], c))
    return out


class NWPUVHR10(Dataset):
    """Samples (one per object): ``{"image": Path, "box": [x1, y1, x2, y2] pixel xyxy, "label": class 0-9,
    "class_name", "prompt_name", "image_id", "object_index" (line order within the image), "width", "height",
    "size_bin"}``."""

    name = "NWPU VHR-10"
    url = "https://gcheng-nwpu.github.io/#Datasets (NWPU VHR-10 dataset)"
    layout = ("<root>/positive_image_set/NNN.jpg + <root>/ground_truth/NNN.txt ('(x1,y1),(x2,y2),c' per line) "
              "[+ <root>/image_set/train.txt]")
    splits = ("all", "dev", "train")
    class_names = list(VHR10_CLASSES)
    prompt_names = list(VHR10_CLASSES)

    def _verify(self) -> None:
        self._require([self.root / "positive_image_set", self.root / "ground_truth"])

    def image_ids(self) -> list[str]:
        listed = self.root / "image_set" / "train.txt"
        if listed.exists():
            ids = [ln.strip() for ln in listed.read_text().splitlines() if ln.strip()]
        else:
            ids = sorted(p.stem for p in (self.root / "ground_truth").glob("*.txt"))
        if self.split == "all":
            return ids
        return [i for i in ids if is_dev_image(i) == (self.split == "dev")]

    def _load(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for image_id in self.image_ids():
            image, gt = self.root / "positive_image_set" / f"{image_id}.jpg", self.root / "ground_truth" / f"{image_id}.txt"
            self._require([image, gt])
            with Image.open(image) as im:  # header only: the size for position phrases
                width, height = im.size
            for k, (box, c) in enumerate(parse_ground_truth(gt.read_text(), f"{self.name} {gt.name}")):
                out.append({"image": image, "box": box, "label": c - 1, "class_name": VHR10_CLASSES[c - 1],
                            "prompt_name": VHR10_CLASSES[c - 1], "image_id": image_id, "object_index": k,
                            "width": width, "height": height, "size_bin": size_bin(box)})
        return out


# --- referring expressions: the class name where unique in the image, else a position phrase ----------------------
#: a position phrase is used only when the object stands out by this fraction of the image (or box) size
EXTREME_MARGIN = 0.05
SIZE_RATIO = 1.5


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _cell(cx: float, cy: float, width: float, height: float) -> str:
    """'top left' ... 'bottom right', 'centre' on a 3 x 3 grid of the image."""
    col = ("left", "", "right")[min(2, int(3 * cx / width))]
    row = ("top", "", "bottom")[min(2, int(3 * cy / height))]
    return " ".join(w for w in (row, col) if w) or "centre"


def referring_expression(obj: dict, same_class: list[dict]) -> str | None:
    """A referring expression for ``obj`` among ``same_class`` (every object of its class in its image, ``obj``
    included): "the <class>" when it is the only one; else the first phrase that singles it out, in this order:
    "the leftmost / rightmost / topmost / bottommost <class>" (its centre beyond every other's by
    :data:`EXTREME_MARGIN` of the image side), "the <class> at the top right" (the only one of its class in that
    cell of a 3 x 3 grid; "in the centre" for the middle cell), "the largest / smallest <class>" (area at least
    :data:`SIZE_RATIO` times every other's); None when no phrase singles it out."""
    name = obj["class_name"]
    others = [o for o in same_class if o is not obj]
    if not others:
        return f"the {name}"
    w, h = float(obj["width"]), float(obj["height"])
    cx, cy = _centre(obj["box"])
    oc = [_centre(o["box"]) for o in others]
    mx, my = EXTREME_MARGIN * w, EXTREME_MARGIN * h
    for word, ok in (("leftmost", all(cx + mx < x for x, _ in oc)), ("rightmost", all(cx - mx > x for x, _ in oc)),
                     ("topmost", all(cy + my < y for _, y in oc)), ("bottommost", all(cy - my > y for _, y in oc))):
        if ok:
            return f"the {word} {name}"
    cell = _cell(cx, cy, w, h)
    if all(_cell(x, y, w, h) != cell for x, y in oc):
        return f"the {name} in the centre" if cell == "centre" else f"the {name} at the {cell}"

    def area(b):
        return (b[2] - b[0]) * (b[3] - b[1])

    a, oa = area(obj["box"]), [area(o["box"]) for o in others]
    if all(a >= SIZE_RATIO * x for x in oa):
        return f"the largest {name}"
    if all(x >= SIZE_RATIO * a for x in oa):
        return f"the smallest {name}"
    return None


def with_referring_expressions(samples: list[dict]) -> list[dict]:
    """The samples that get a referring expression (:func:`referring_expression` among the objects of their class in
    their image), each with ``"expression"`` added, in input order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for s in samples:
        groups.setdefault((s["image_id"], s["class_name"]), []).append(s)
    out = []
    for s in samples:
        expr = referring_expression(s, groups[(s["image_id"], s["class_name"])])
        if expr is not None:
            out.append({**s, "expression": expr})
    return out
