"""Converters and pair generators on small fixtures written in the official on-disk formats.

The datasets are read by ``geovec.data`` (the benchmark's readers): these tests check what training makes of
their samples, and that the readers' rules (train split only, empty captions, placeholder rows, prompt names)
carry over to the training examples."""

import json

import numpy as np
import pytest
from PIL import Image
from tests.bench.formats import write_caption_dataset, write_class_folders, write_dior_rsvg, write_rsvqa

from geovec.data import DIORRSVG, RSICD, RSICDScenes, RSVQALR, DatasetNotFoundError, UCMerced
from geovec.data.captions import karpathy_captions, precomp_captions
from geovec.data.mosaic import Mosaic, build_mosaics
from geovec.train.converters import (caption_examples, class_folders, class_prompts, classification_examples,
                                     dior_rsvg_examples, referring_examples,
                                     rsvqa_examples, vqa_examples)
from geovec.train.data import read_jsonl
from geovec.train.geo import geo_examples, train_places
from geovec.train.mixture import build_mixture, rsicd_split
from geovec.train.mosaics import region_examples, train_mosaics

from .fixtures import rsicd_entries, write_dev_data

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


def test_composed_pairs_are_the_dev_tasks_edits_of_train_mosaics(tmp_path):
    from geovec.data.mosaic import COMPOSED_TEMPLATE, add_region, composed_edits
    from geovec.train.mosaics import COMPOSED_TEMPLATES, composed_examples

    root = write_dev_data(tmp_path / "data", geo=False)
    samples = RSICDScenes(root / "rsicd", "train").samples
    ex, paths = composed_examples(samples, tmp_path / "c", 4, seed=3, variants=2, canvas_size=256,
                                  side_range=(40, 90))
    bases = build_mosaics(samples, 4, seed=3, free_slots=1, id_prefix="train-edit", canvas_size=256,
                          regions_per_mosaic=(2, 4), side_range=(40, 90))
    edits, meta = composed_edits(bases, samples, 2, np.random.default_rng(4))
    assert len(ex) == len(edits) == len(meta) and len(paths) == len(bases) + len(edits)
    for e, m, (b, name) in zip(ex, edits, meta):
        added = m.regions[-1]
        assert added.class_name not in {r.class_name for r in bases[b].regions}  # a class the base lacks
        assert m.regions[:-1] == bases[b].regions and tuple(added.box) in map(tuple, bases[b].free_boxes)
        assert np.array_equal(np.asarray(Image.open(e.positives[0]["image"]).convert("RGB")), m.render())
        assert name in e.query["text"] and e.group == f"edit:{b}"
        assert any(e.query["text"] == t.format(name=name) for t in COMPOSED_TEMPLATES)
        # the same base's other edits are the hard negatives
        others = [i for i, (bb, _) in enumerate(meta) if bb == b and edits[i] is not m]
        assert len(e.negatives) == len(others) and e.positives[0] not in e.negatives
    assert ex[0].query["text"] == COMPOSED_TEMPLATE.format(name=meta[0][1])  # the dev wording is among them
    train_files = {str(s["image"]) for s in samples}
    assert all(r.source in train_files for m in edits for r in m.regions)
    # the edit builder is the dev task's: same bases, same rng -> the same edits as add_region by hand
    rng = np.random.default_rng(4)
    by_class = {}
    for s in samples:
        by_class.setdefault(s["class_name"], []).append(s)
    b0 = bases[0]
    options = sorted(c for c in by_class if c not in {r.class_name for r in b0.regions})
    c = options[rng.permutation(len(options))[0]]
    assert edits[0].to_dict() == add_region(b0, by_class[c][int(rng.integers(len(by_class[c])))]).to_dict()


def test_build_mixture_reads_the_train_split_only(tmp_path):
    pytest.importorskip("rasterio")
    root = write_dev_data(tmp_path / "data")
    manifest = build_mixture(root, tmp_path / "mix", mosaics=4, seed=0)
    val = {str(s["image"]) for s in RSICD(root / "rsicd", "val").samples}
    used = set()
    for task, path in manifest["files"].items():
        for e in read_jsonl(path):
            for it in [e.query, *e.positives, *e.negatives]:
                if "image" in it:
                    used.add(it["image"])
    assert used and not used & val
    assert set(manifest["files"]) == {"retrieval", "classification", "region", "composed", "geo", "vqa"}
    composed = list(read_jsonl(manifest["files"]["composed"]))
    assert composed and all(e.task == "composed" and {"image", "text"} <= set(e.query) for e in composed)
    vqa = list(read_jsonl(manifest["files"]["vqa"]))
    assert vqa and all(e.task == "vqa" and "text" in e.query and "image" in e.query for e in vqa)
    mosaics = json.loads((tmp_path / "mix" / "mosaics" / "mosaics.json").read_text())
    assert len(mosaics) == 4 and all(r["source"] not in val for m in mosaics for r in m["regions"])
    from geovec.data.geo import geo_places

    held_out = {str(p["image"].name) for p in geo_places(root, "eval", cache_dir=tmp_path / "bench")}
    chips = [p for p in used if "geo-chips-" in p]
    assert chips and manifest["geo_places"] == len(chips) and not {p.split("/")[-1] for p in chips} & held_out


def test_geo_pairs_come_from_the_spatial_train_split(tmp_path):
    pytest.importorskip("rasterio")
    from geovec.data.geo import geo_places

    root = write_dev_data(tmp_path / "data")
    places = train_places(root, tmp_path / "geo")
    held_out = geo_places(root, "eval", cache_dir=tmp_path / "bench")  # what the rsmeb-dev geo tasks rank
    assert places and held_out
    assert not {p["scene"] for p in places} & {p["scene"] for p in held_out}
    same = geo_places(root, "train", cache_dir=tmp_path / "other")
    assert [(p["scene"], p["lat"], p["lon"]) for p in places] == [(p["scene"], p["lat"], p["lon"]) for p in same]
    ex = list(geo_examples(places))
    assert len(ex) == 2 * len(places)
    assert ex[0].task == "geo" and ex[0].query == {"image": str(places[0]["image"])}
    assert ex[0].positives == [{"lat": places[0]["lat"], "lon": places[0]["lon"]}]
    assert ex[1].query == {"text": places[0]["text"], "lat": places[0]["lat"], "lon": places[0]["lon"]}
    assert set(ex[1].positives[0]) == {"image", "lat", "lon"}
    # chips of one scene are distinct places
    by_scene = {}
    for p in places:
        by_scene.setdefault(p["scene"], set()).add((p["lat"], p["lon"]))
    assert all(len(v) == 16 for v in by_scene.values())  # 4 x 4 chips per RSVQA scene
