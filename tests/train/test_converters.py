"""Converters and pair generators on small fixtures written in the official on-disk formats."""

import json

import numpy as np
import pytest
from PIL import Image

from geovec.train.converters import (caption_examples, class_folders, class_lists, classification_examples,
                                     dior_rsvg_examples, dior_rsvg_objects, friendly_class_name, karpathy_captions,
                                     precomp_captions, rsvqa_examples)
from geovec.train.geo import geo_crops, geo_examples, is_train_scene, read_geo_index
from geovec.train.mosaics import build_mosaics, place_boxes, region_examples


def _img(path, color=(10, 20, 30), size=(64, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def test_karpathy_json_train_split_only_and_both_directions(tmp_path):
    for n in ("a.jpg", "b.jpg"):
        _img(tmp_path / "RSICD_images" / n)
    sent = lambda raw, i: {"tokens": raw.split(), "raw": raw, "imgid": i, "sentid": i}
    meta = {"images": [
        {"filename": "a.jpg", "imgid": 0, "split": "train", "sentids": [0, 1],
         "sentences": [sent("many planes .", 0), sent(" .", 0)]},
        {"filename": "b.jpg", "imgid": 1, "split": "val", "sentids": [2], "sentences": [sent("a river .", 1)]},
    ], "dataset": "rsicd"}
    (tmp_path / "dataset_rsicd.json").write_text(json.dumps(meta))
    pairs = karpathy_captions(tmp_path / "dataset_rsicd.json", tmp_path / "RSICD_images", "train")
    assert [p for p, _ in pairs] == [str(tmp_path / "RSICD_images" / "a.jpg")]  # never the val image
    ex = list(caption_examples(pairs))
    assert len(ex) == 2  # image->caption, caption->image; the empty " ." caption is dropped
    assert ex[0].positives == [{"text": "many planes ."}] and ex[1].positives[0]["image"].endswith("a.jpg")
    assert ex[0].group == ex[1].group


def test_precomp_files(tmp_path):
    (tmp_path / "train_filename.txt").write_text("1.tif\n2.tif\n")
    (tmp_path / "train_caps.txt").write_text("\n".join(f"cap {i}" for i in range(10)) + "\n")
    pairs = precomp_captions(tmp_path, tmp_path / "imgs", "train")
    assert pairs[1] == (str(tmp_path / "imgs" / "2.tif"), [f"cap {i}" for i in range(5, 10)])
    (tmp_path / "train_caps.txt").write_text("only one\n")
    with pytest.raises(ValueError, match="caption lines"):
        precomp_captions(tmp_path, tmp_path / "imgs", "train")


def test_class_folders_lists_and_friendly_names(tmp_path):
    _img(tmp_path / "UCMerced_LandUse" / "Images" / "denseresidential" / "denseresidential00.tif")
    _img(tmp_path / "UCMerced_LandUse" / "Images" / "storage_tanks" / "storage_tanks01.tif")
    pairs = class_folders(tmp_path / "UCMerced_LandUse" / "Images")
    assert [c for _, c in pairs] == ["denseresidential", "storage_tanks"]
    assert friendly_class_name("DenseResidential") == "dense residential"
    assert friendly_class_name("storage_tanks") == "storage tanks"
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes" / "Airport.txt").write_text("airport_1.jpg\nairport_2.jpg\n")
    (tmp_path / "classes" / "Beach.txt").write_text("beach_1.jpg\n")
    lst = class_lists(tmp_path / "classes", tmp_path / "imgs", keep={"airport_1.jpg", "beach_1.jpg"})
    assert [(p.split("/")[-1], c) for p, c in lst] == [("airport_1.jpg", "Airport"), ("beach_1.jpg", "Beach")]
    ex = list(classification_examples(lst))
    assert ex[0].positives[0] == {"text": "airport"} and ex[0].negatives == [{"text": "beach"}]


def test_rsvqa_triplets_skip_placeholders_and_filter_images(tmp_path):
    q = {"questions": [
        {"id": 0, "img_id": 1, "type": "presence", "question": "Is there a road?", "answers_ids": [0], "active": True},
        {"id": 1, "img_id": 1, "type": "presence", "question": "x", "answers_ids": [1], "active": False},
        {"id": 2, "img_id": 5, "type": "count", "question": "How many buildings?", "answers_ids": [2], "active": True},
    ]}
    a = {"answers": [{"id": 0, "question_id": 0, "answer": "yes", "active": True},
                     {"id": 1, "question_id": 1, "answer": "", "active": False},
                     {"id": 2, "question_id": 2, "answer": "3", "active": True}]}
    im = {"images": [{"id": 1, "questions_ids": [0, 1], "active": True}, {"id": 5, "questions_ids": [2], "active": True}]}
    for kind, d in (("questions", q), ("answers", a), ("images", im)):
        (tmp_path / f"LR_split_train_{kind}.json").write_text(json.dumps(d))
    ex = list(rsvqa_examples(tmp_path, "train", keep_image=lambda i: i % 5 != 0))
    assert len(ex) == 1
    assert ex[0].task == "vqa" and ex[0].query["text"] == "Is there a road?" and ex[0].positives == [{"text": "yes"}]
    assert ex[0].query["image"].endswith("Images_LR/1.tif")


def _dior_xml(objects):
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox><description>{d}</description></object>" for n, b, d in objects)
    return f"<annotation><filename>{{}}</filename><size><width>800</width><height>800</height></size>{objs}</annotation>"


def test_dior_rsvg_split_lists_global_object_indices(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "00002.xml").write_text(_dior_xml([("ship", (1, 2, 30, 40), "the ship on the left")]).format("00002.jpg"))
    (tmp_path / "Annotations" / "00001.xml").write_text(_dior_xml([
        ("airplane", (10, 10, 50, 50), "the large airplane"), ("vehicle", (60, 60, 70, 75), "a small car")]).format("00001.jpg"))
    objs = dior_rsvg_objects(tmp_path)
    assert [o["description"] for o in objs] == ["the large airplane", "a small car", "the ship on the left"]  # sorted files
    (tmp_path / "train.txt").write_text("1\n")
    ex = list(dior_rsvg_examples(tmp_path, "train"))
    assert ex[0].query == {"image": str(tmp_path / "JPEGImages" / "00001.jpg"), "box": [60.0, 60.0, 70.0, 75.0]}
    assert ex[0].positives == [{"text": "a small car"}] and ex[0].negatives == [{"text": "the large airplane"}]
    assert ex[1].query["text"] == "a small car" and ex[1].positives == [ex[0].query]
    assert ex[1].negatives == [{"image": ex[0].query["image"], "box": [10.0, 10.0, 50.0, 50.0]}]


def test_mosaics_place_real_pixels_without_overlap(tmp_path):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    imgs = [(str(_img(tmp_path / f"src{i}.png", c)), [f"caption {i}", f"other {i}"], "Airport") for i, c in enumerate(colors)]
    mos = build_mosaics(imgs, tmp_path / "m", 3, seed=0, canvas=256, per_mosaic=(2, 3), side=(40, 100))
    again = build_mosaics(imgs, tmp_path / "m2", 3, seed=0, canvas=256, per_mosaic=(2, 3), side=(40, 100))
    assert [[r.box for r in m.regions] for m in mos] == [[r.box for r in m.regions] for m in again]  # seeded
    for m in mos:
        arr = np.asarray(Image.open(m.path))
        assert arr.shape == (256, 256, 3) and 2 <= len(m.regions) <= 3
        for r in m.regions:
            x1, y1, x2, y2 = r.box
            src_color = colors[int(r.source[-5])]
            assert (arr[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2] == src_color).all()
        for a in m.regions:
            for b in m.regions:
                if a is not b:
                    assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]
    ex = list(region_examples(mos[:1]))
    n = len(mos[0].regions)
    assert len(ex) == n * (1 + 2 + 1)  # box->captions, 2 x caption->box, box->class
    refexp = [e for e in ex if "text" in e.query]
    assert all(len(e.negatives) == n - 1 and "box" in e.positives[0] for e in refexp)


def test_place_boxes_respects_canvas():
    boxes = place_boxes(np.random.default_rng(1), 100, 4, 20, 40)
    assert all(0 <= b[0] < b[2] <= 100 and 0 <= b[1] < b[3] <= 100 for b in boxes)


def test_geo_pairs_from_geotiffs_with_real_georef(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from pyproj import Transformer

    to_wgs = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    root = tmp_path / "data"
    (root / "rsvqa_lr" / "Images_LR").mkdir(parents=True)
    rows = ["dataset,relpath,width,height,center_lat,center_lon,src_epsg,pixel_size_crs_units"]
    for i in (0, 1):
        path = root / "rsvqa_lr" / "Images_LR" / f"{i}.tif"
        x0, y0 = 665000.0 + i * 4000, 6650000.0  # EPSG:3857 metres, near 51.2 N 6.0 E
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs="EPSG:3857",
                           transform=from_origin(x0, y0, 10.0, 10.0)) as ds:
            ds.write(np.random.default_rng(i).integers(0, 255, (3, 64, 64), dtype=np.uint8))
        lon_i, lat_i = to_wgs.transform(x0 + 320, y0 - 320)
        rows.append(f"rsvqa_lr,Images_LR/{i}.tif,64,64,{lat_i},{lon_i},3857,10")
    (root / "geo_index.csv").write_text("\n".join(rows) + "\n")
    scenes = [r for r in read_geo_index(root) if is_train_scene(r)]
    assert [r["id"] for r in scenes] == [1]  # id 0 is kept for evaluation
    places = geo_crops(scenes, tmp_path / "crops", 3, seed=0)
    assert len(places) == 4
    lon_c, lat_c = to_wgs.transform(669000.0 + 320, 6650000.0 - 320)  # scene centre
    assert places[0]["lat"] == pytest.approx(lat_c, abs=1e-6) and places[0]["lon"] == pytest.approx(lon_c, abs=1e-6)
    for p in places[1:]:  # crop centres lie inside the 640 m scene, each at its own place
        assert p["lat"] != places[0]["lat"] or p["lon"] != places[0]["lon"]
        assert abs(p["lat"] - lat_c) < 0.01 and abs(p["lon"] - lon_c) < 0.01 and p["image"].endswith(".png")
    ex = list(geo_examples(places))
    assert ex[0].task == "geo" and set(ex[0].positives[0]) == {"lat", "lon"}
    assert set(ex[1].query) == {"text", "lat", "lon"} and set(ex[1].positives[0]) == {"image", "lat", "lon"}
