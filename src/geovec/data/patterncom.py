"""PatternCom: composed image retrieval (image + attribute text -> images) on PatternNet, the rscir protocol.

Official layout (github.com/billpsomas/rscir, README "Datasets"): ``PatternNet/PatternCom/<attribute>.csv`` for
the six attributes (color, context, density, existence, quantity, shape) next to ``PatternNet/images/<class>/``.
Each csv is headerless; every row is ``query filename, attribute, value`` (rscir ``evaluate.py:read_csv`` reads
``row[0], row[1], row[2]`` of every row) and names a PatternNet image by its file name.

The protocol, as rscir's ``evaluate.py`` / ``utils.py`` compute it (reproduced by
:func:`geovec.bench.builders.composed_patterncom_task`):

* the class of a row is the file-name prefix before the first digit (``re.split(r'\\d', filename)[0]``);
* queries: for every row and every *other* value seen in its group, one query (the row's image, that value as
  the text). The group is the label ``attribute column + class`` with rscir's per-attribute merges
  (:data:`GROUP_MERGES`, :func:`group_key`: density pools dense/sparse residential, shape closed
  road/intersection, context bridge/overpass, existence ferry terminal/harbor and parking space/parking lot);
* candidates: every PatternNet image (the 30,400 of ``patternnet.csv``), not only the csv images;
* positives: the images of the *same attribute csv* whose row has that value and whose class maps to the
  query's class under :data:`CLASS_MAPPING` (rscir's ``class_mapping``, applied for every attribute). A file
  listed twice in a csv counts with its last row (rscir's ``filename_to_index_map``);
* AP over the full ranking per (query, value); mAP per attribute = mean over its queries; the main score is the
  mean of the six per-attribute mAPs (rscir README: "Avg").

rscir's tables spell classes without underscores (``denseresidential``); the class key here drops underscores
from the prefix, so the merges hold for either spelling of PatternNet file names.

Psomas et al., "Composed image retrieval for remote sensing", IGARSS 2024.
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
