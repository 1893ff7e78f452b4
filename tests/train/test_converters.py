"""Converters and pair generators on small fixtures written in the official on-disk formats.

The datasets are read by ``geovec.data`` (the benchmark's readers): these tests check what training makes of
their samples, and that the readers' rules (train split only, empty captions, placeholder rows, prompt names)
carry over to the training examples."""

import json

import numpy as np
import pytest
from PIL import Image
from tests.bench.formats import write_caption_dataset, write_class_folders, write_dior_rsvg, write_image, write_rsvqa

from geovec.data import DIORRSVG, RSICD, RSICDScenes, RSVQALR, DatasetNotFoundError, UCMerced
from geovec.data.mosaic import Mosaic, build_mosaics
from geovec.train.converters import (caption_examples, class_folders, class_prompts, classification_examples,
                                     dior_rsvg_examples, karpathy_captions, precomp_captions, referring_examples,
                                     rsvqa_examples, vqa_examples)
from geovec.train.data import read_jsonl
from geovec.train.geo import geo_crops, geo_examples, is_train_scene, read_geo_index
from geovec.train.mixture import build_mixture, rsicd_split
from geovec.train.mosaics import region_examples, train_mosaics

from .fixtures import CLASSES, rsicd_entries, write_dev_data

ENTRIES = [("a.jpg", "train", ["many planes .", " ."]), ("b.jpg", "val", ["a river ."])]


def test_captions_come_from_the_loader_train_split_only_and_both_directions(tmp_path):
    write_caption_dataset(tmp_path, "RSICD_images", "dataset_rsicd.json", ENTRIES)
    ex = list(caption_examples(RSICD(tmp_path, "train").samples))
    assert len(ex) == 2  # image->caption, caption->image; the empty " ." caption is dropped by the loader
    assert ex[0].query == {"image": str(tmp_path / "RSICD_images" / "a.jpg")}  # never the val image
    assert ex[0].positives == [{"text": "many planes ."}] and ex[1].positives[0]["image"].endswith("a.jpg")
    assert ex[0].group == ex[1].group
    # (path, captions) pairs still work for your own data
    assert [e.to_json() for e in caption_examples([(str(tmp_path / "RSICD_images" / "a.jpg"), ["many planes ."])])] \
        == [e.to_json() for e in ex]


def test_own_caption_files_are_read_by_the_same_loader(tmp_path):
    write_caption_dataset(tmp_path / "own", "pics", "captions.json", ENTRIES, precomp_dir="precomp")
    pairs = karpathy_captions(tmp_path / "own" / "captions.json", tmp_path / "own" / "pics", "train")
    assert pairs == [(str(tmp_path / "own" / "pics" / "a.jpg"), ["many planes ."])]
    assert precomp_captions(tmp_path / "own" / "precomp", tmp_path / "own" / "pics", "val") == \
        [(str(tmp_path / "own" / "pics" / "b.jpg"), ["a river ."])]
    (tmp_path / "own" / "precomp" / "train_caps.txt").write_text("one\ntwo\nthree\n")  # 3 lines for 1 image: fine
    assert precomp_captions(tmp_path / "own" / "precomp", tmp_path / "own" / "pics", "train")[0][1] == ["one", "two", "three"]
    (tmp_path / "own" / "precomp" / "val_filename.txt").write_text("b.jpg\na.jpg\n")
    (tmp_path / "own" / "precomp" / "val_caps.txt").write_text("one\ntwo\nthree\n")
    with pytest.raises(DatasetNotFoundError, match="caption lines"):
        precomp_captions(tmp_path / "own" / "precomp", tmp_path / "own" / "pics", "val")
    with pytest.raises(DatasetNotFoundError, match="missing"):  # a listed image that is not there is reported
        (tmp_path / "own" / "pics" / "a.jpg").unlink()
        karpathy_captions(tmp_path / "own" / "captions.json", tmp_path / "own" / "pics", "train")


def test_classification_uses_the_loaders_prompt_names(tmp_path):
    write_class_folders(tmp_path / "UCMerced_LandUse" / "Images",
                        {c: [f"{c}00.tif"] for c in UCMerced.classes})
    ex = list(classification_examples(UCMerced(tmp_path).samples))
    dense = next(e for e in ex if "denseresidential" in e.query["image"])
    assert dense.positives == [{"text": "dense residential"}, {"text": "a remote sensing image of dense residential."}]
    assert len(dense.negatives) == 20 and {"text": "storage tanks"} in dense.negatives
    assert class_prompts("storage_tanks") == ["storage tanks", "a remote sensing image of storage tanks."]
    # your own folders (nested ones: the leaf folder is the class)
    write_class_folders(tmp_path / "own" / "a", {"DenseResidential": ["x.png"]})
    write_class_folders(tmp_path / "own" / "b" / "deeper", {"storage-tanks": ["y.png"]})
    pairs = class_folders(tmp_path / "own")
    assert [c for _, c in pairs] == ["DenseResidential", "storage-tanks"]
    ex = list(classification_examples(pairs))
    assert ex[0].positives[0] == {"text": "dense residential"} and ex[0].negatives == [{"text": "storage tanks"}]


def test_rsicd_scenes_train_split_with_class_overrides(tmp_path):
    root = write_dev_data(tmp_path, geo=False)
    scenes = RSICDScenes(root / "rsicd", "train").samples
    ex = list(classification_examples(scenes))
    train_names = {fn for fn, split, _ in rsicd_entries() if split == "train"}
    assert sorted(e.query["image"].split("/")[-1] for e in ex) == sorted(train_names)
    center = next(e for e in ex if "center_" in e.query["image"])
    assert center.positives[0] == {"text": "city center"}  # RSICDScenes' override, not the bare folder name
    assert sorted(p.split("/")[-1] for p, _, _ in rsicd_split(root, "train")) == sorted(train_names)


def test_rsvqa_placeholders_skipped_and_images_filtered(tmp_path):
    write_rsvqa(tmp_path, "LR", "Images_LR", "train")
    ex = list(rsvqa_examples(tmp_path, "train", keep_image=lambda i: i != 7))
    assert [e.query["text"] for e in ex] == ["Is there a building?", "How many roads are there?"]
    assert ex[0].task == "vqa" and ex[0].positives == [{"text": "yes"}] and ex[0].query["image"].endswith("Images_LR/3.tif")
    assert len(list(vqa_examples(RSVQALR(tmp_path, "train").samples))) == 4  # the inactive question is not there


def test_dior_rsvg_examples_from_the_loader(tmp_path):
    write_dior_rsvg(tmp_path, {
        "00002": [("ship", (1, 2, 30, 40), "the ship on the left")],
        "00001": [("airplane", (10, 10, 50, 50), "the large airplane"), ("vehicle", (52, 52, 60, 63), "a small car"),
                  ("vehicle", (2, 52, 9, 60), "a car in the corner")],
    }, {"train": [0, 1, 3], "test": [2]})
    ex = list(dior_rsvg_examples(tmp_path, "train"))
    assert len(ex) == 6
    img1 = str(tmp_path / "JPEGImages" / "00001.jpg")
    assert ex[2].query == {"image": img1, "box": [52.0, 52.0, 60.0, 63.0]}
    assert ex[2].positives == [{"text": "a small car"}]
    # negatives: the image's other objects of the same split only (object 2 is a test expression)
    assert ex[2].negatives == [{"text": "the large airplane"}]
    assert ex[3].query["text"] == "a small car" and ex[3].positives == [ex[2].query]
    assert ex[3].negatives == [{"image": img1, "box": [10.0, 10.0, 50.0, 50.0]}]
    assert [e.to_json() for e in referring_examples(DIORRSVG(tmp_path, "train").samples)] == [e.to_json() for e in ex]


def test_training_mosaics_are_the_data_layers_from_train_images(tmp_path):
    root = write_dev_data(tmp_path / "data", geo=False)
    samples = RSICDScenes(root / "rsicd", "train").samples
    mos, paths = train_mosaics(samples, tmp_path / "m", 3, seed=5, canvas_size=256, side_range=(40, 100))
    same = build_mosaics(samples, 3, seed=5, canvas_size=256, side_range=(40, 100), id_prefix="train")
    assert all(isinstance(m, Mosaic) for m in mos) and [m.to_dict() for m in mos] == [m.to_dict() for m in same]
    train_files = {str(s["image"]) for s in samples}
    for m, p in zip(mos, paths):
        assert np.array_equal(np.asarray(Image.open(p)), m.render())  # the saved PNG is the builder's render
        assert {r.source for r in m.regions} <= train_files and len({r.class_name for r in m.regions}) == len(m.regions)
    manifest = json.loads((tmp_path / "m" / "mosaics.json").read_text())
    assert [d["path"] for d in manifest] == paths and Mosaic.from_dict(manifest[0]).regions == mos[0].regions
    ex = list(region_examples(mos[:1], paths[:1]))
    n = len(mos[0].regions)
    assert len(ex) == n * (1 + 2 + 1)  # box->captions, 2 x caption->box, box->class
    refexp = [e for e in ex if "text" in e.query]
    assert all(len(e.negatives) == n - 1 and "box" in e.positives[0] for e in refexp)
    cls = [e for e in ex if e.group.endswith(":class")]
    assert {e.positives[0]["text"] for e in cls} <= {"airport", "beach", "city center", "forest", "port", "river"}


def test_build_mixture_reads_the_train_split_only(tmp_path):
    pytest.importorskip("rasterio")
    root = write_dev_data(tmp_path / "data")
    manifest = build_mixture(root, tmp_path / "mix", mosaics=4, crops_per_scene=1, seed=0)
    val = {str(s["image"]) for s in RSICD(root / "rsicd", "val").samples}
    used = set()
    for task, path in manifest["files"].items():
        for e in read_jsonl(path):
            for it in [e.query, *e.positives, *e.negatives]:
                if "image" in it:
                    used.add(it["image"])
    assert used and not used & val
    mosaics = json.loads((tmp_path / "mix" / "mosaics" / "mosaics.json").read_text())
    assert len(mosaics) == 4 and all(r["source"] not in val for m in mosaics for r in m["regions"])
    assert not [p for p in used if "/rsvqa_" in p and p.endswith(("/0.tif", "/5.tif"))]  # geo eval ids


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
