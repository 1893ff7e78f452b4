"""PatternCom: composed image retrieval (image + attribute text -> images) on PatternNet.

Official layout: ``PatternNet/PatternCom/<attribute>.csv`` for the six attributes (color, context, density,
existence, quantity, shape), headerless rows ``query filename, attribute, value`` naming PatternNet images
(``PatternNet/images/<class>/<filename>``). A query is an image plus a *different* value of the same
attribute for the same category; the targets are the images of that category with that value.

Psomas et al., "Composed image retrieval for remote sensing", IGARSS 2024 (github.com/billpsomas/rscir).
"""

from __future__ import annotations

import csv
import re
from typing import Any

from geovec.data.base import BenchDataset

ATTRIBUTES = ("color", "context", "density", "existence", "quantity", "shape")


def category_of(filename: str) -> str:
    """PatternNet category from a file name (``tennis_court123.jpg`` -> ``tennis_court``), as rscir does."""
    return re.split(r"\d", filename)[0].rstrip("_")


class PatternCom(BenchDataset):
    """Samples (one per csv row): ``{"image": Path, "filename", "category", "attribute_file", "attribute",
    "value"}``."""

    name = "PatternCom"
    url = "https://github.com/billpsomas/rscir (PatternCom csv files) on PatternNet (sites.google.com/view/zhouwx/dataset)"
    layout = "<root>/PatternNet/PatternCom/{color,context,density,existence,quantity,shape}.csv + <root>/PatternNet/images/<class>/<file>.jpg"
    splits = ("test",)

    def _verify(self) -> None:
        base = self.root / "PatternNet"
        self._require([base / "images"] + [base / "PatternCom" / f"{a}.csv" for a in ATTRIBUTES])

    def _load(self) -> list[dict[str, Any]]:
        base = self.root / "PatternNet"
        by_name = {p.name: p for p in (base / "images").rglob("*") if p.is_file()}
        out, missing = [], []
        for attr in ATTRIBUTES:
            with open(base / "PatternCom" / f"{attr}.csv", newline="") as f:
                for row in csv.reader(f):
                    if len(row) < 3 or not row[0].strip():
                        continue
                    fn = row[0].strip()
                    if fn not in by_name:
                        missing.append(fn)
                        continue
                    out.append({"image": by_name[fn], "filename": fn, "category": category_of(fn),
                                "attribute_file": attr, "attribute": row[1].strip(), "value": row[2].strip()})
        if missing:
            raise self._missing(f"{len(missing)} PatternCom image(s) not found under PatternNet/images (e.g. {missing[0]})")
        return out
