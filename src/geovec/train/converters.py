"""Converters from the official dataset formats to training examples (:class:`~geovec.train.data.Example`).

Every converter takes the dataset's ``root`` and a ``split`` and yields examples whose image paths are
absolute, so the written JSONL can live anywhere. Never convert an evaluation split into training data.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

from geovec.train.data import Example

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def friendly_class_name(name: str) -> str:
    """``DenseResidential`` / ``dense_residential`` / ``storage-tanks`` -> ``dense residential`` etc."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.sub(r"[_\-\s]+", " ", name).strip().lower()


def class_prompts(name: str) -> list[str]:
    """Texts that name a scene class: the bare name first, then a sentence template."""
    n = friendly_class_name(name)
    return [n, f"a remote sensing image of {n}."]


# --- caption sets (RSICD, RSITMD, UCM-captions, Sydney-captions) -----------------------------------------------
def caption_examples(image_captions: list[tuple[str, list[str]]], both_directions: bool = True) -> Iterator[Example]:
    """(image path, captions) pairs -> image->captions and caption->image retrieval examples, grouped per
    image so one image's captions are never each other's negatives."""
    for path, caps in image_captions:
        caps = [c.strip() for c in caps if c and c.strip(" .")]
        if not caps:
            continue
        group = str(path)
        yield Example("retrieval", {"image": str(path)}, [{"text": c} for c in caps], group=group)
        if both_directions:
            for c in caps:
                yield Example("retrieval", {"text": c}, [{"image": str(path)}], group=group)


def karpathy_captions(dataset_json: str | Path, image_dir: str | Path, split: str = "train") -> list[tuple[str, list[str]]]:
    """Karpathy-style json (``images[].filename/split/sentences[].raw``) -> [(image path, captions)]."""
    meta = json.loads(Path(dataset_json).read_text())
    image_dir = Path(image_dir)
    return [(str(image_dir / im["filename"]), [s["raw"] for s in im["sentences"]])
            for im in meta["images"] if im.get("split") == split]


def precomp_captions(precomp_dir: str | Path, image_dir: str | Path, split: str = "train",
                     per_image: int = 5) -> list[tuple[str, list[str]]]:
    """"precomp" text files: ``{split}_filename.txt`` (one line per image) and ``{split}_caps.txt``
    (``per_image`` consecutive caption lines per image)."""
    d = Path(precomp_dir)
    names = [l.strip() for l in (d / f"{split}_filename.txt").read_text().splitlines() if l.strip()]
    caps = [l.rstrip("\n") for l in (d / f"{split}_caps.txt").read_text().splitlines()]
    if len(caps) < per_image * len(names):
        raise ValueError(f"{d}: {len(caps)} caption lines for {len(names)} images (expected {per_image} each)")
    return [(str(Path(image_dir) / n), caps[per_image * i : per_image * (i + 1)]) for i, n in enumerate(names)]


# --- scene classification ----------------------------------------------------------------------------------------
def classification_examples(image_classes: list[tuple[str, str]], all_negatives: bool = True) -> Iterator[Example]:
    """(image path, class name) -> image -> class-name examples; every other class name is a hard negative,
    which matches the evaluation (rank all class names)."""
    names = sorted({c for _, c in image_classes})
    prompts = {c: class_prompts(c) for c in names}
    for path, c in image_classes:
        neg = [{"text": prompts[o][0]} for o in names if o != c] if all_negatives else []
        yield Example("classification", {"image": str(path)}, [{"text": t} for t in prompts[c]], neg)


def class_folders(root: str | Path) -> list[tuple[str, str]]:
    """``root/<class>/<image>`` (UCM, AID, PatternNet, RESISC45 layouts; Million-AID: leaf folder = class)."""
    root = Path(root)
    out = []
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            out.append((str(f), f.parent.name))
    return out


def class_lists(list_dir: str | Path, image_dir: str | Path, keep: set[str] | None = None) -> list[tuple[str, str]]:
    """RSICD ``classes/<Class>.txt`` (one filename per line) -> [(image path, class)]; ``keep``: filenames
    allowed (e.g. the train split)."""
    out = []
    for f in sorted(Path(list_dir).glob("*.txt")):
        for line in f.read_text().splitlines():
            name = line.strip()
            if name and (keep is None or name in keep):
                out.append((str(Path(image_dir) / name), f.stem))
    return out


# --- RSVQA ------------------------------------------------------------------------------------------------------
def rsvqa_examples(root: str | Path, split: str, prefix: str = "LR", image_dir: str = "Images_LR",
                   keep_image=lambda img_id: True) -> Iterator[Example]:
    """``<P>_split_<split>_{questions,answers,images}.json`` -> (image + question) -> answer examples.
    Placeholder rows (``active: false``) are skipped; ``keep_image(img_id)`` filters images."""
    root = Path(root)
    load = lambda kind: json.loads((root / f"{prefix}_split_{split}_{kind}.json").read_text())[kind]
    questions, answers = load("questions"), load("answers")
    by_id = {a["id"]: a for a in answers if a.get("active", True)}
    for q in questions:
        if not q.get("active", True) or not keep_image(q["img_id"]):
            continue
        answer_ids = q.get("answers_ids") or []
        texts = [by_id[a]["answer"] for a in answer_ids if a in by_id]
        if not texts:
            continue
        img = root / image_dir / f"{q['img_id']}.tif"
        yield Example("vqa", {"image": str(img), "text": q["question"]}, [{"text": texts[0]}],
                      group=f"{q['img_id']}:{q['id']}")


# --- DIOR-RSVG ------------------------------------------------------------------------------------------------
def dior_rsvg_objects(root: str | Path) -> list[dict]:
    """All objects of ``Annotations/*.xml`` in sorted-file order (the global index the split files use)."""
    root = Path(root)
    objects = []
    for xml in sorted((root / "Annotations").glob("*.xml")):
        tree = ET.parse(xml).getroot()
        filename = tree.findtext("filename") or f"{xml.stem}.jpg"
        for obj in tree.iter("object"):
            bb = obj.find("bndbox")
            box = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            objects.append({"image": str(root / "JPEGImages" / filename), "name": obj.findtext("name"),
                            "box": box, "description": (obj.findtext("description") or "").strip()})
    return objects


def dior_rsvg_examples(root: str | Path, split: str = "train") -> Iterator[Example]:
    """Referring expressions on DIOR-RSVG: (image + box) -> expression, and (image + expression) -> (image +
    box) with the image's other objects as hard negatives. The split file lists global object indices."""
    root = Path(root)
    objects = dior_rsvg_objects(root)
    wanted = [int(l) for l in (root / f"{split}.txt").read_text().split()]
    by_image: dict[str, list[dict]] = {}
    for o in objects:
        by_image.setdefault(o["image"], []).append(o)
    for idx in wanted:
        o = objects[idx]
        if not o["description"]:
            continue
        group = f"dior:{idx}"
        region = {"image": o["image"], "box": o["box"]}
        others = [x for x in by_image[o["image"]] if x is not o and x["box"] != o["box"]]
        yield Example("region", region, [{"text": o["description"]}],
                      [{"text": x["description"]} for x in others if x["description"]], group=group)
        yield Example("region", {"image": o["image"], "text": o["description"]}, [region],
                      [{"image": x["image"], "box": x["box"]} for x in others], group=group)
