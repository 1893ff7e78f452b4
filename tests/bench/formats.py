"""Writers for tiny datasets in exactly the official on-disk layouts (used by the loader and runner tests)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from geovec.data.scenes import EUROSAT_CLASSES


def write_image(path: Path, seed: int, size: int = 32) -> Path:
    """A small real image file (JPEG/PNG/TIFF by suffix) with seeded content."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def write_class_folders(base: Path, files: dict[str, list[str]]) -> None:
    """``base/<class>/<file>`` for each class -> file names."""
    seed = 0
    for cls, names in files.items():
        for n in names:
            write_image(base / cls / n, seed)
            seed += 1


def karpathy_json(entries: list[tuple[str, str, list[str]]], dataset: str) -> dict:
    """entries: (filename, split, raw captions) -> the Karpathy schema used by RSICD/UCM/Sydney/RSITMD."""
    images, sentid = [], 0
    for imgid, (fn, split, caps) in enumerate(entries):
        sents = []
        for c in caps:
            sents.append({"tokens": [t for t in c.lower().replace(".", " ").split()], "raw": c, "imgid": imgid,
                          "sentid": sentid})
            sentid += 1
        images.append({"filename": fn, "imgid": imgid, "split": split,
                       "sentids": [s["sentid"] for s in sents], "sentences": sents})
    return {"images": images, "dataset": dataset}


def write_caption_dataset(root: Path, image_dir: str, json_name: str | None, entries, precomp_dir: str | None = None,
                          suffix_seed: int = 100) -> None:
    for i, (fn, _split, _caps) in enumerate(entries):
        write_image(root / image_dir / fn, suffix_seed + i)
    if json_name:
        (root / json_name).write_text(json.dumps(karpathy_json(entries, root.name)))
    if precomp_dir:
        d = root / precomp_dir
        d.mkdir(parents=True, exist_ok=True)
        for split in sorted({e[1] for e in entries}):
            rows = [e for e in entries if e[1] == split]
            (d / f"{split}_filename.txt").write_text("".join(f"{fn}\n" for fn, _, _ in rows))
            (d / f"{split}_caps.txt").write_text("".join(f"{c}\n" for _, _, caps in rows for c in caps))


def write_rsvqa(root: Path, prefix: str, image_dir: str, split: str) -> None:
    """Two images (ids 3 and 7), an inactive placeholder image (id 5), questions incl. an inactive one."""
    for i in (3, 7):
        write_image(root / image_dir / f"{i}.tif", i)
    questions = [
        {"id": 0, "date_added": 1.0, "img_id": 3, "people_id": 0, "type": "presence",
         "question": "Is there a building?", "answers_ids": [0], "active": True},
        {"id": 1, "date_added": 1.0, "img_id": 3, "people_id": 0, "type": "count",
         "question": "How many roads are there?", "answers_ids": [1], "active": True},
        {"id": 2, "date_added": 1.0, "img_id": 5, "people_id": 0, "type": "presence",
         "question": "Is there a farmland?", "answers_ids": [2], "active": False},
        {"id": 3, "date_added": 1.0, "img_id": 7, "people_id": 0, "type": "presence",
         "question": "Is there a water area?", "answers_ids": [3], "active": True},
        {"id": 4, "date_added": 1.0, "img_id": 7, "people_id": 0, "type": "count",
         "question": "How many buildings are there?", "answers_ids": [4], "active": True},
    ]
    answers = [{"id": i, "date_added": 1.0, "question_id": i, "people_id": 0, "answer": a,
                "active": i != 2} for i, a in enumerate(["yes", "4", "no", "no", "12"])]
    images = [{"id": 3, "date_added": 1.0, "people_id": 0, "questions_ids": [0, 1], "active": True},
              {"id": 5, "date_added": 1.0, "people_id": 0, "questions_ids": [2], "active": False},
              {"id": 7, "date_added": 1.0, "people_id": 0, "questions_ids": [3, 4], "active": True}]
    for kind, rows in (("questions", questions), ("answers", answers), ("images", images)):
        (root / f"{prefix}_split_{split}_{kind}.json").write_text(json.dumps({kind: rows}))


DIOR_XML = """<annotation>
  <filename>{fn}</filename>
  <size><width>64</width><height>64</height><depth>3</depth></size>
{objects}</annotation>
"""
DIOR_OBJ = """  <object>
    <name>{name}</name>
    <bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox>
    <description>{desc}</description>
  </object>
"""


def write_dior_rsvg(root: Path, images: dict[str, list[tuple[str, tuple, str]]], splits: dict[str, list[int]]) -> None:
    """images: id -> [(class, box, description)]; xml written in the given id order (loader must sort)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for k, (img_id, objs) in enumerate(images.items()):
        write_image(root / "JPEGImages" / f"{img_id}.jpg", k, size=64)
        body = "".join(DIOR_OBJ.format(name=n, b=b, desc=d) for n, b, d in objs)
        (root / "Annotations" / f"{img_id}.xml").write_text(DIOR_XML.format(fn=f"{img_id}.jpg", objects=body))
    for split, idx in splits.items():
        (root / f"{split}.txt").write_text("".join(f"{i}\n" for i in idx))


def patternnet_class_dir(filename: str) -> str:
    """The PatternNet class folder of a file name (``denseresidential001.jpg`` -> ``dense_residential``)."""
    from geovec.data.patterncom import category_of
    from geovec.data.scenes import PatternNet

    return next((c for c in PatternNet.classes if c.replace("_", "") == category_of(filename)), category_of(filename))


def write_patterncom(root: Path, rows: dict[str, list[tuple[str, str, str]]], header: bool = False) -> list[Path]:
    """rscir's layout: ``PatternNet/PatternCom/<attribute>.csv`` (headerless ``filename,attribute,value`` rows; with
    ``header=True`` a header line is written first, which the official files do not have) and
    ``PatternNet/images/<class>/<file>`` holding the csv images plus one image ``<class>900.jpg`` in every
    PatternNet class folder, so the pool is a whole (tiny) PatternNet release. Returns the image paths."""
    from geovec.data.patterncom import ATTRIBUTES
    from geovec.data.scenes import PatternNet

    base = root / "PatternNet"
    (base / "PatternCom").mkdir(parents=True, exist_ok=True)
    names = [fn for attr in ATTRIBUTES for fn, _a, _v in rows.get(attr, [])]
    names += [f"{c.replace('_', '')}900.jpg" for c in PatternNet.classes]
    paths = []
    for k, fn in enumerate(dict.fromkeys(names)):
        paths.append(write_image(base / "images" / patternnet_class_dir(fn) / fn, k, size=8))
    for attr in ATTRIBUTES:
        with open(base / "PatternCom" / f"{attr}.csv", "w", newline="") as f:
            w = csv.writer(f)
            if header:
                w.writerow(["filename", "attribute", "value"])
            for fn, a, v in rows.get(attr, []):
                w.writerow([fn, a, v])
    return paths


def write_rsvqa_official(root: Path, prefix: str, image_dir: str,
                         splits: dict[str, list[tuple[int, list[tuple[str, str, str]]]]]) -> None:
    """Split files built the way RSVQA's ``AutomaticDB/Splits.py`` builds them: one id space shared by all splits
    (id = list position), every other split's image / question / answer a placeholder ``{"id", "active": false}``.
    ``splits``: split -> [(image id, [(type, question, answer), ...])]; question and answer ids are assigned in
    image order. Images are written to ``image_dir/<id>.tif``."""
    images, questions, answers = {}, [], []
    for split, imgs in splits.items():
        for img_id, qas in imgs:
            qids = []
            for qtype, question, answer in qas:
                qid = len(questions)
                questions.append({"id": qid, "date_added": 1.0, "img_id": img_id, "people_id": 0, "type": qtype,
                                  "question": question, "answers_ids": [qid], "active": True})
                answers.append({"id": qid, "date_added": 1.0, "question_id": qid, "people_id": 0, "answer": answer,
                                "active": True})
                qids.append(qid)
            images[img_id] = (split, {"id": img_id, "date_added": 1.0, "people_id": 0, "questions_ids": qids,
                                      "active": True})
            write_image(root / image_dir / f"{img_id}.tif", img_id, size=8)
    q_split = {q["id"]: images[q["img_id"]][0] for q in questions}
    for split in splits:
        imgs = [images[i][1] if i in images and images[i][0] == split else {"id": i, "active": False}
                for i in range(max(images) + 1)]
        qs = [q if q_split[q["id"]] == split else {"id": q["id"], "active": False} for q in questions]
        ans = [a if q_split[a["id"]] == split else {"id": a["id"], "active": False} for a in answers]
        for kind, rows in (("questions", qs), ("answers", ans), ("images", imgs)):
            (root / f"{prefix}_split_{split}_{kind}.json").write_text(json.dumps({kind: rows}))


def write_geotiff(path: Path, lat: float, lon: float, size: int = 16, pixel_m: float = 10.0, seed: int = 0) -> Path:
    """A GeoTIFF in EPSG:3857 whose footprint centre is (lat, lon)."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    half = size * pixel_m / 2
    transform = from_origin(x - half, y + half, pixel_m, pixel_m)
    data = np.random.default_rng(seed).integers(0, 256, (3, size, size), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:3857", transform=transform) as ds:
        ds.write(data)
    return path


# NWPU VHR-10: image id -> ground-truth text (official format, with the spaces and blank line some files have);
# 010, 015, 023 and 031 fall in the dev part of the seeded split
VHR10_GT = {
    "010": "(10,10),(40,50),1\n( 68,116),(170,161),3 \n\n(200, 20),(230, 60),3\n",
    "015": "(5,5),(25,25),10\n",
    "020": "(0,0),(100,100),7\n",
    "023": "(50,60),(120,130),5\n",
    "031": "(1,1),(97,98),2\n",
}


def write_vhr10(root: Path, gt: dict[str, str] = VHR10_GT, listed: bool = True) -> Path:
    """``positive_image_set/<id>.jpg`` (256 px), ``ground_truth/<id>.txt`` and ``image_set/train.txt``."""
    for image_id, text in gt.items():
        write_image(root / "positive_image_set" / f"{image_id}.jpg", int(image_id), size=256)
        (root / "ground_truth").mkdir(parents=True, exist_ok=True)
        (root / "ground_truth" / f"{image_id}.txt").write_text(text)
    if listed:
        (root / "image_set").mkdir(exist_ok=True)
        (root / "image_set" / "train.txt").write_text("".join(f"{i}\n" for i in gt))
    return root


def write_eurosat_ms(folder: Path, per_class: int = 1) -> None:
    """13-band uint16 GeoTIFFs (UTM 32N, 10 m, one 16 px patch per class, 20 km apart) whose B04 / B03 / B02 are
    3000 / 1500 / 0: true colour reads them as (255, ~128, 0); every other band is 7000 (a wrong band order shows
    up as saturated channels)."""
    import rasterio
    from rasterio.transform import from_origin

    for k, cls in enumerate(EUROSAT_CLASSES):
        for j in range(per_class):
            path = folder / cls / f"{cls}_{j}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = np.full((13, 16, 16), 7000, dtype=np.uint16)
            data[3], data[2], data[1] = 3000, 1500, 0  # B04, B03, B02 (1-based bands 4, 3, 2)
            with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=13, dtype="uint16",
                               crs="EPSG:32632", transform=from_origin(500000 + 20000 * k, 5200000 + 3000 * j, 10, 10)) as ds:
                ds.write(data)


def write_outside_data(root: Path) -> Path:
    """The folders of the tasks outside RSICD: ``eurosat_rgb_dev``, ``eurosat_ms``, ``nwpu_vhr10``."""
    write_class_folders(root / "eurosat_rgb_dev", {c: [f"{c}_{i}.jpg" for i in (1, 2)] for c in EUROSAT_CLASSES})
    write_eurosat_ms(root / "eurosat_ms")
    write_vhr10(root / "nwpu_vhr10", {**VHR10_GT, "010": "(10,100),(40,130),3\n(200,100),(230,130),3\n(100,10),(160,40),1\n",
                                      "015": "(5,5),(25,25),10\n(150,150),(250,250),10\n",
                                      "031": "(1,1),(97,98),2\n(120,120),(150,150),3\n"})
    return root
