"""PatternCom: composed image retrieval (image + attribute text -> images) on PatternNet, the rscir protocol
(Psomas et al., "Composed image retrieval for remote sensing", IGARSS 2024; github.com/billpsomas/rscir).

Layout: ``PatternNet/PatternCom/<attribute>.csv`` for the six attributes next to ``PatternNet/images/<class>/``;
each csv is headerless, every row ``query filename, attribute, value`` naming a PatternNet image. The queries,
positives and score are rscir's ``evaluate.py`` / ``utils.py`` (docs/benchmark.md, "Protocols"; built by
:func:`geovec.bench.builders.composed_patterncom_task`); this module holds rscir's class rules: the class of a
file name (:func:`category_of`), the per-attribute group merges (:func:`group_key`) and the class mapping
for relevance (:func:`relevance_class`). rscir spells classes without underscores; the class key drops them, so
either spelling of PatternNet file names works.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from geovec.data.base import Dataset
from geovec.data.scenes import PatternNet

ATTRIBUTES = ("color", "context", "density", "existence", "quantity", "shape")

#: rscir ``utils.class_mapping``: classes that count as one for relevance (every attribute).
CLASS_MAPPING = {
    "denseresidential": "residential", "sparseresidential": "residential",
    "closedroad": "road", "intersection": "road",
    "bridge": "roadpass", "overpass": "roadpass",
    "ferryterminal": "pier", "harbor": "pier",
    "parkingspace": "parking", "parkinglot": "parking",
}

#: rscir ``utils.fix_query_attributelabels``: per attribute csv, the classes pooled when collecting the values a
#: query may be asked for (its "prompts").
GROUP_MERGES = {
    "density": {"denseresidential": "residential", "sparseresidential": "residential"},
    "shape": {"closedroad": "road", "intersection": "road"},
    "context": {"bridge": "roadpass", "overpass": "roadpass"},
    "existence": {"ferryterminal": "pier", "harbor": "pier", "parkingspace": "parking", "parkinglot": "parking"},
}


def category_of(filename: str) -> str:
    """PatternNet class of a file name as rscir derives it: the prefix before the first digit, underscores
    dropped (``tenniscourt123.jpg`` and ``tennis_court123.jpg`` -> ``tenniscourt``)."""
    return re.split(r"\d", filename)[0].replace("_", "")


def relevance_class(category: str) -> str:
    """The class a row counts as for relevance (rscir ``apply_class_mapping``)."""
    return CLASS_MAPPING.get(category, category)


def group_key(attribute_file: str, attribute: str, category: str) -> str:
    """The group whose values a row's queries ask for: rscir's ``attribute + class`` label after
    ``fix_query_attributelabels`` (e.g. ``densitydenseresidential`` -> ``densityresidential`` in density.csv)."""
    key = attribute + category
    for old, new in GROUP_MERGES.get(attribute_file, {}).items():
        key = key.replace(attribute_file + old, attribute_file + new)
    return key


class PatternCom(Dataset):
    """Samples (one per csv row, in file order per attribute): ``{"image": Path, "filename", "category",
    "attribute_file", "attribute", "value"}`` (``attribute``/``value`` verbatim from the csv).
    ``pool``: every PatternNet image (sorted by class folder, then file name), the candidate set."""

    name = "PatternCom"
    url = ("https://github.com/billpsomas/rscir (PatternCom csv files, Google Drive link in its README) on PatternNet "
           "(sites.google.com/view/zhouwx/dataset)")
    layout = ("<root>/PatternNet/PatternCom/{color,context,density,existence,quantity,shape}.csv (headerless "
              "filename,attribute,value) + <root>/PatternNet/images/<class>/<file>.jpg (all 38 classes)")
    splits = ("test",)

    def _verify(self) -> None:
        base = self.root / "PatternNet"
        self._require([base / "images"] + [base / "PatternCom" / f"{a}.csv" for a in ATTRIBUTES])
        # the candidate pool is the whole PatternNet release (raises on a partial one)
        self.pool = [s["image"] for s in PatternNet(self.root).samples]

    def _load(self) -> list[dict[str, Any]]:
        base = self.root / "PatternNet"
        by_name = {p.name: p for p in self.pool}
        out, missing = [], []
        for attr in ATTRIBUTES:
            with open(base / "PatternCom" / f"{attr}.csv", newline="") as f:
                for row in csv.reader(f):
                    if not row or not any(c.strip() for c in row):
                        continue  # blank line
                    if len(row) < 3:
                        raise self.missing_error(f"{attr}.csv: row {row!r} is not 'filename,attribute,value'")
                    fn = row[0]
                    if fn not in by_name:
                        missing.append(fn)
                        continue
                    out.append({"image": by_name[fn], "filename": fn, "category": category_of(fn),
                                "attribute_file": attr, "attribute": row[1], "value": row[2]})
        if missing:
            raise self.missing_error(f"{len(missing)} PatternCom image(s) not found under PatternNet/images "
                                     f"(e.g. {missing[0]})")
        return out
