"""RSVQA-LR (LRBEN) and RSVQA-HR (HRBEN): remote-sensing visual question answering.

Official layout per split: three json files ``<P>_split_<split>_questions.json``,
``<P>_split_<split>_answers.json`` and ``<P>_split_<split>_images.json`` (``P`` = ``LR`` or ``USGS``) with
``{"questions": [{"id", "img_id", "type", "question", "answers_ids", "active", ...}]}``,
``{"answers": [{"id", "question_id", "answer", "active", ...}]}`` and
``{"images": [{"id", "questions_ids", "active", ...}]}``. Images are ``Images_LR/<id>.tif`` (LR) or
``Data/<id>.tif`` (HR). Rows with ``"active": false`` are placeholders (the splits share one id space) and
are skipped, for questions, answers and images alike.

Lobry et al., "RSVQA: Visual question answering for remote sensing data", TGRS 2020.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from geovec.data.base import BenchDataset


class RSVQA(BenchDataset):
    prefix: ClassVar[str] = ""
    image_dir: ClassVar[str] = ""

    def _files(self) -> dict[str, Any]:
        return {k: self.root / f"{self.prefix}_split_{self.split}_{k}.json" for k in ("questions", "answers", "images")}

    def _verify(self) -> None:
        self._require(list(self._files().values()) + [self.root / self.image_dir])

    def _load(self) -> list[dict[str, Any]]:
        files = self._files()
        questions = json.loads(files["questions"].read_text())["questions"]
        answers = {a["id"]: a for a in json.loads(files["answers"].read_text())["answers"] if a.get("active", True)}
        images = {i["id"]: i for i in json.loads(files["images"].read_text())["images"] if i.get("active", True)}
        out = []
        for q in questions:
            if not q.get("active", True) or q["img_id"] not in images:
                continue
            ans = [answers[a]["answer"] for a in q.get("answers_ids", []) if a in answers]
            if not ans:
                continue
            path = self.root / self.image_dir / f"{q['img_id']}.tif"
            out.append({"image": path, "image_id": q["img_id"], "question_id": q["id"], "type": q["type"],
                        "question": q["question"], "answer": str(ans[0])})
        missing = sorted({s["image_id"] for s in out if not s["image"].exists()})
        if missing:
            raise self._missing(f"{len(missing)} image(s) of split {self.split!r} missing from {self.image_dir}/ "
                                f"(e.g. {missing[0]}.tif)")
        return out


class RSVQALR(RSVQA):
    """RSVQA-LR: 772 Sentinel-2 RGB tiles (256x256 px, 10 m, the Netherlands), 77K questions
    (presence, comparison, rural/urban, count)."""

    name = "RSVQA-LR"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344334)"
    layout = "<root>/LR_split_{split}_{questions,answers,images}.json + <root>/Images_LR/<id>.tif"
    prefix = "LR"
    image_dir = "Images_LR"
    splits = ("test", "val", "train")


class RSVQAHR(RSVQA):
    """RSVQA-HR: 10,659 USGS orthophotos (512x512 px, 15 cm, NE United States), 1M questions
    (presence, comparison, count, area). ``test_phili`` is the second (Philadelphia) test set."""

    name = "RSVQA-HR"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344367)"
    layout = "<root>/USGS_split_{split}_{questions,answers,images}.json + <root>/Data/<id>.tif"
    prefix = "USGS"
    image_dir = "Data"
    splits = ("test", "val", "train", "test_phili")
