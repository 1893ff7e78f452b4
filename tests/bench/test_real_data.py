"""Loaders and rsmeb-dev constructions on the real data in shared/data (skipped when it is absent)."""

import csv

import numpy as np
import pytest

from geovec.data import (
    RSICD,
    DatasetNotFoundError,
    RSICDScenes,
    RSVQAHRImages,
    RSVQALRImages,
    SydneyCaptions,
    UCMCaptions,
)
from geovec.bench.task_data import BuildContext
from geovec.bench.tasks import get_task, tasks_in

pytestmark = pytest.mark.shared_data


def test_rsicd_val_split_and_class_lists(shared_data):
    val = RSICD(shared_data / "rsicd", "val")
    assert len(val) == 491
    # the README: val = every 20th image in sorted filename order
    all_names = sorted(s["filename"] for s in RSICD(shared_data / "rsicd", "train").samples + val.samples)
    assert sorted(s["filename"] for s in val) == [n for i, n in enumerate(all_names) if i % 20 == 19]
    assert all(1 <= len(s["captions"]) <= 5 for s in val)
    scenes = RSICDScenes(shared_data / "rsicd", "val")
    assert len(scenes) == 491 and len(scenes.class_names) == 31 and "playfields" in scenes.class_names
    assert "dense residential" in scenes.prompt_names
    # a <class>_<n>.jpg file sits in its class list
    s = next(x for x in scenes if x["filename"].startswith("airport_"))
    assert s["class_name"] == "Airport"


def test_rsicd_empty_captions_are_dropped(shared_data):
    train = {s["filename"]: s for s in RSICD(shared_data / "rsicd", "train").samples}
    assert len(train["bridge_218.jpg"]["captions"]) == 4  # one of the three known " ." captions


def test_rsicd_has_no_test_split_here(shared_data):
    with pytest.raises(DatasetNotFoundError, match="no samples for split 'test'"):
        RSICD(shared_data / "rsicd", "test")


def test_ucm_precomp_and_sydney_json_samples(shared_data):
    ucm = UCMCaptions(shared_data / "ucm_captions", "train")
    assert len(ucm) == 9 and all(len(s["captions"]) == 5 for s in ucm)
    assert ucm[0]["captions"][0] == "There is a piece of farmland ."
    syd = SydneyCaptions(shared_data / "sydney_captions", "train")
    assert len(syd) == 9 and syd[0]["image"].name == "1.tif"


def test_geotiff_centres_agree_with_geo_index(shared_data):
    index = {(r["dataset"], r["relpath"]): (float(r["center_lat"]), float(r["center_lon"]))
             for r in csv.DictReader(open(shared_data / "geo_index.csv"))}
    for folder, cls, n_eval in (("rsvqa_lr", RSVQALRImages, 11), ("rsvqa_hr", RSVQAHRImages, 5)):
        ds = cls(shared_data / folder, "eval")
        assert len(ds) == n_eval and all(int(s["id"]) % 5 == 0 for s in ds)
        for s in ds:
            lat, lon = index[(folder, f"{cls.image_dir}/{s['id']}.tif")]
            assert s["lat"] == pytest.approx(lat, abs=1e-4) and s["lon"] == pytest.approx(lon, abs=1e-4)


@pytest.fixture(scope="module")
def dev_ctx(shared_data, tmp_path_factory):
    return BuildContext(shared_data, tmp_path_factory.mktemp("dev-cache"))


def test_dev_tasks_use_val_images_only(dev_ctx, shared_data):
    val = {str(s["image"]) for s in RSICD(shared_data / "rsicd", "val").samples}
    from geovec.bench import dev

    mosaics, _ = dev.region_mosaics(dev_ctx)
    sources = [r.source for m in mosaics for r in m.regions]
    assert sources and set(sources) <= val
    assert len(sources) == len(set(sources))  # no image placed twice


def test_dev_mosaic_tasks_are_deterministic_and_cached(dev_ctx):
    a = get_task("dev-mosaic-referring").build(dev_ctx)
    png = a.candidates[0]["image"]
    mtime = png.stat().st_mtime_ns
    b = get_task("dev-mosaic-referring").build(dev_ctx)
    assert a.queries == b.queries and a.candidates == b.candidates and a.gold == b.gold
    assert png.stat().st_mtime_ns == mtime  # rendered once, reused
    groups = a.within_groups[0]
    assert len(set(groups)) == 100 and len(groups) >= 300 and 3 <= np.mean([groups.count(g) for g in set(groups)]) <= 5
    # the expression is one of the region's own captions; the box lies on the 448 px canvas
    cap = get_task("dev-mosaic-region-caption").build(dev_ctx)
    for q, g in zip(cap.queries[:20], cap.gold[:20]):
        x1, y1, x2, y2 = q["box"]
        assert 0 <= x1 < x2 <= 448 and 0 <= y1 < y2 <= 448
    assert all(len(g) >= 1 for g in cap.gold)


def test_dev_box_class_and_region_to_region(dev_ctx):
    cls = get_task("dev-mosaic-box-class").build(dev_ctx)
    assert len(cls.candidates) == 31 and len(cls.queries) >= 300 and "box" in cls.queries[0]
    rr = get_task("dev-mosaic-region-region").build(dev_ctx)
    groups = get_task("dev-mosaic-referring").build(dev_ctx).within_groups[0]
    for qi, golds in zip(rr.exclude, rr.gold):
        assert qi not in golds and all(groups[g] != groups[qi] for g in golds)  # golds lie in other mosaics


def test_dev_composed_edits(dev_ctx):
    d = get_task("dev-mosaic-composed").build(dev_ctx)
    assert len(d.queries) == len(d.candidates) == 300
    assert all(q["text"].startswith("the same scene with an added ") for q in d.queries)
    groups = d.within_groups[0]
    assert all(groups.count(g) == 3 for g in set(groups))  # 3 edits per base mosaic
    assert len({q["text"] for q, g in zip(d.queries, groups) if g == groups[0]}) == 3


def test_dev_geo_tasks_are_spatially_held_out(dev_ctx, shared_data):
    from geovec.data.geo import find_scenes, geo_places, haversine_km, spatial_split

    d = get_task("dev-geo-image-location").build(dev_ctx)
    assert len(d.queries) >= 300  # chips of held-out scenes from all four georeferenced sources
    assert set(d.info["datasets"]) == {"rsvqa_lr", "rsvqa_hr", "eurosat_ms", "satclip_s2"}
    assert d.candidates[0].keys() == {"lat", "lon"} and len(d.candidates) == d.info["n_scenes"]
    t = get_task("dev-geo-text-location-image").build(dev_ctx)
    assert all(c.keys() == {"image"} for c in t.candidates)  # no location on the candidate side
    assert {"lat", "lon", "text"} <= t.queries[0].keys()
    assert any("of forest" in q["text"] for q in t.queries)  # EuroSAT texts name the class
    # no training scene lies beside a held-out one
    scenes = {s.scene: s for s in find_scenes(shared_data)}
    split = spatial_split(list(scenes.values()))
    ev = [scenes[k] for k, v in split.items() if v == "eval"]
    tr = [scenes[k] for k, v in split.items() if v == "train"]
    gaps = [haversine_km(a.lat, a.lon, b.lat, b.lon) - a.radius_km - b.radius_km for a in ev for b in tr]
    assert min(gaps) >= 2.0
    train = geo_places(shared_data, "train", cache_dir=dev_ctx.cache_dir)
    assert not {p["scene"] for p in train} & {p["scene"] for p in geo_places(shared_data, "eval", cache_dir=dev_ctx.cache_dir)}


def test_dev_nwpu_and_eurosat_chips_render_true_colour(dev_ctx, shared_data):
    from PIL import Image

    from geovec.data.geo import geo_places

    chips = [p for p in geo_places(shared_data, "all", cache_dir=dev_ctx.cache_dir) if p["dataset"] == "eurosat_ms"]
    px = np.asarray(Image.open(chips[0]["image"]))
    assert px.shape == (64, 64, 3) and px.dtype == np.uint8 and 5 < px.mean() < 250


def test_full_rsmeb_tasks_report_missing_official_releases(dev_ctx):
    for spec in tasks_in("rsmeb"):
        with pytest.raises(DatasetNotFoundError):
            spec.build(dev_ctx)
