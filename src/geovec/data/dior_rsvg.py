"""DIOR-RSVG: visual grounding (one referring expression per object) on DIOR images.

Official layout: ``Annotations/<id>.xml`` (VOC-like: ``filename``, ``size``, and one ``object`` per expression
with ``name``, ``bndbox`` ``xmin/ymin/xmax/ymax`` in pixels, ``description``), ``JPEGImages/<id>.jpg`` and
split files ``{train,val,test}.txt``. The split files hold **global object indices**: the objects are
numbered 0, 1, 2, ... while walking the xml files in sorted order and their objects in file order; they are
not image ids. 17,402 expressions on 38,320 objects in 17,402 800x800 images, 20 classes.

Zhan et al., "RSVG: Exploring data, models, and benchmarks for visual grounding on remote sensing data", TGRS 2023.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from geovec.data.base import Dataset, prompt_name

DIOR_PROMPT_NAMES = {
    "baseballfield": "baseball field", "basketballcourt": "basketball court", "groundtrackfield": "ground track field",
    "golffield": "golf course", "storagetank": "storage tank", "tenniscourt": "tennis court",
    "trainstation": "train station", "windmill": "windmill", "Expressway-Service-area": "expressway service area",
    "Expressway-toll-station": "expressway toll station",
}


class DIORRSVG(Dataset):
    """Samples (one per object of the split): ``{"image": Path, "box": [x1, y1, x2, y2] pixel xyxy,
    "class_name", "prompt_name", "expression", "image_id", "object_index", "width", "height"}``."""

    name = "DIOR-RSVG"
    url = "https://github.com/ZhanYang-nwpu/RSVG-pytorch (DIOR_RSVG)"
    layout = "<root>/Annotations/<id>.xml + <root>/JPEGImages/<id>.jpg + <root>/{train,val,test}.txt (global object indices)"
    splits = ("test", "val", "train")

    def _verify(self) -> None:
        self._require([self.root / "Annotations", self.root / "JPEGImages", self.root / f"{self.split}.txt"])
        if not any((self.root / "Annotations").glob("*.xml")):
            raise self.missing_error("Annotations/ holds no xml files")

    def _load(self) -> list[dict[str, Any]]:
        wanted = {int(ln) for ln in (self.root / f"{self.split}.txt").read_text().split()}
        out: list[dict[str, Any]] = []
        index = 0
        for xml_path in sorted((self.root / "Annotations").glob("*.xml")):
            ann = ET.parse(xml_path).getroot()
            filename = ann.findtext("filename") or f"{xml_path.stem}.jpg"
            size = ann.find("size")
            width = int(size.findtext("width")) if size is not None else None
            height = int(size.findtext("height")) if size is not None else None
            for obj in ann.findall("object"):
                if index in wanted:
                    bb = obj.find("bndbox")
                    box = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
                    name = (obj.findtext("name") or "").strip()
                    out.append({"image": self.root / "JPEGImages" / filename, "box": box, "class_name": name,
                                "prompt_name": prompt_name(name, DIOR_PROMPT_NAMES),
                                "expression": " ".join((obj.findtext("description") or "").split()),
                                "image_id": xml_path.stem, "object_index": index, "width": width, "height": height})
                index += 1
        beyond = sorted(i for i in wanted if i >= index)
        if beyond:
            raise self.missing_error(f"{self.split}.txt lists object index {beyond[0]} but the annotations hold only "
                                f"{index} objects (partial Annotations/?)")
        missing = sorted({s["image_id"] for s in out if not s["image"].exists()})
        if missing:
            raise self.missing_error(f"{len(missing)} image(s) missing from JPEGImages/ (e.g. {missing[0]}.jpg)")
        return out
