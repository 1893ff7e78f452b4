"""RSVQA-LR (LRBEN) and RSVQA-HR (HRBEN): remote-sensing visual question answering.

Official layout per split: three json files ``<P>_split_<split>_questions.json``,
``<P>_split_<split>_answers.json`` and ``<P>_split_<split>_images.json`` (``P`` = ``LR`` or ``USGS``) with
``{"questions": [{"id", "img_id", "type", "question", "answers_ids", "active", ...}]}``,
``{"answers": [{"id", "question_id", "answer", "active", ...}]}`` and
``{"images": [{"id", "questions_ids", "active", ...}]}``. Images are ``Images_LR/<id>.tif`` (LR) or
``Data/<id>.tif`` (HR). Rows with ``"active": false`` are placeholders (the splits share one id space) and
are skipped, for questions, answers and images alike. An image row may name its file (``"file"``, relative to
the image folder), as the splits written by :func:`geovec.data.vqa_gen.write_rsvqa` do; released rows do not.

Answers are normalised as the official code does (:func:`normalize_answer`); ``answer_raw`` keeps the released
string. Question types as released: ``presence``, ``comp`` (comparison), ``count``, ``rural_urban`` (LR) and
``area`` (HR).

Lobry et al., "RSVQA: Visual question answering for remote sensing data", TGRS 2020; official code
github.com/syvlo/RSVQA (``VQA_model/VocabEncoder.py``, ``VQALoader.py``, ``computeStats.py``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from geovec.data.base import Dataset

#: The official answer classes after normalisation (``computeStats.py``'s confusion-matrix vocabularies; HR
#: counts stay numbers, 0..89 there).
LR_ANSWERS = ("yes", "no", "rural", "urban", "0", "between 0 and 10", "between 10 and 100", "between 100 and 1000",
              "more than 1000")
HR_AREA_ANSWERS = ("0m2", "between 0m2 and 10m2", "between 10m2 and 100m2", "between 100m2 and 1000m2",
                   "more than 1000m2")


def _bin(num: int, token: str, unit: str) -> str:
    # VocabEncoder: 0 keeps its token; (0, 10], (10, 100], (100, 1000], > 1000
    if 0 < num <= 10:
        return f"between 0{unit} and 10{unit}"
    if 10 < num <= 100:
        return f"between 10{unit} and 100{unit}"
    if 100 < num <= 1000:
        return f"between 100{unit} and 1000{unit}"
    if num > 1000:
        return f"more than 1000{unit}"
    return token


def normalize_answer(answer: str, qtype: str | None = None, dataset: str = "LR") -> str:
    """An answer as the official RSVQA ``VocabEncoder`` encodes it (answer side).

    A trailing ``?`` or ``.`` is dropped, the answer is split on whitespace and every token lower-cased; then
    * LR (``range_numbers=True`` in ``train.py`` / ``computeStats.py``): a number token is binned into
      ``"0"`` (kept), ``"between 0 and 10"`` (1-10), ``"between 10 and 100"`` (11-100),
      ``"between 100 and 1000"`` (101-1000), ``"more than 1000"`` (> 1000);
    * HR (``range_numbers=False``): numbers (counts) are kept as they are;
    * both: an area token ``<n>m2`` is binned into ``"0m2"`` (kept), ``"between 0m2 and 10m2"``,
      ``"between 10m2 and 100m2"``, ``"between 100m2 and 1000m2"``, ``"more than 1000m2"`` (same bounds).
    yes/no and rural/urban only get lower-cased. ``qtype`` is not used: the official rule goes by the token's
    form, whatever the question type (it is accepted so call sites can pass it). ``dataset``: ``"LR"`` or
    ``"HR"`` (``"USGS"`` is accepted for HR).
    """
    if dataset not in ("LR", "HR", "USGS"):
        raise ValueError(f"dataset must be 'LR' or 'HR', not {dataset!r}")
    sentence = str(answer)
    if sentence and sentence[-1] in "?.":
        sentence = sentence[:-1]
    out = []
    for token in sentence.split():
        token = token.lower()
        if dataset == "LR" and token.isdigit():
            token = _bin(int(token), token, "")
        if token[-2:] == "m2" and token[:-2].isdigit():
            token = _bin(int(token[:-2]), token, "m2")
        out.append(token)
    return " ".join(out)


class RSVQA(Dataset):
    """Samples, one per question of the split: ``{"image", "image_id", "question_id", "type", "question",
    "answer" (normalised), "answer_raw"}``, in the official loader's order (active images in file order, each
    image's ``questions_ids`` in order; the answer is the question's first ``answers_ids`` entry)."""

    prefix: ClassVar[str] = ""
    image_dir: ClassVar[str] = ""
    vocab: ClassVar[str] = ""  # "LR" or "HR": which normalisation the official code applies

    def _files(self) -> dict[str, Any]:
        return {k: self.root / f"{self.prefix}_split_{self.split}_{k}.json" for k in ("questions", "answers", "images")}

    def _verify(self) -> None:
        self._require(list(self._files().values()) + [self.root / self.image_dir])

    def _load(self) -> list[dict[str, Any]]:
        files = self._files()
        # placeholders are {"id", "active": false} rows that keep the ids aligned with list positions across splits
        questions = {q["id"]: q for q in json.loads(files["questions"].read_text())["questions"] if q.get("active", True)}
        answers = {a["id"]: a for a in json.loads(files["answers"].read_text())["answers"] if a.get("active", True)}
        images = [i for i in json.loads(files["images"].read_text())["images"] if i.get("active", True)]
        out = []
        for img in images:
            for qid in img.get("questions_ids", []):
                q = questions.get(qid)
                if q is None or not q.get("answers_ids") or q["answers_ids"][0] not in answers:
                    continue
                raw = str(answers[q["answers_ids"][0]]["answer"])
                # released rows name no file: the image is <id>.tif; a derived split (geovec.data.vqa_gen) names it
                image = self.root / self.image_dir / str(img.get("file") or f"{img['id']}.tif")
                out.append({"image": image, "image_id": img["id"],
                            "question_id": q["id"], "type": q["type"], "question": q["question"],
                            "answer": normalize_answer(raw, q["type"], self.vocab), "answer_raw": raw})
        missing = sorted({s["image"].name for s in out if not s["image"].exists()})
        if missing:
            raise self.missing_error(f"{len(missing)} image(s) of split {self.split!r} missing from {self.image_dir}/ "
                                f"(e.g. {missing[0]})")
        return out


class RSVQALR(RSVQA):
    """RSVQA-LR: 772 Sentinel-2 RGB tiles (256x256 px, 10 m, the Netherlands), 77K questions
    (presence, comparison, rural/urban, count)."""

    name = "RSVQA-LR"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344334)"
    layout = "<root>/LR_split_{split}_{questions,answers,images}.json + <root>/Images_LR/<id>.tif"
    prefix = "LR"
    image_dir = "Images_LR"
    vocab = "LR"
    splits = ("test", "val", "train")


class RSVQAHR(RSVQA):
    """RSVQA-HR: 10,659 USGS orthophotos (512x512 px, 15 cm, NE United States), 1M questions
    (presence, comparison, count, area). ``test_phili`` is the second (Philadelphia) test set."""

    name = "RSVQA-HR"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344367)"
    layout = "<root>/USGS_split_{split}_{questions,answers,images}.json + <root>/Data/<id>.tif"
    prefix = "USGS"
    image_dir = "Data"
    vocab = "HR"
    splits = ("test", "val", "train", "test_phili")
