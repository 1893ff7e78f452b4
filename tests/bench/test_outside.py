"""The rsmeb-dev tasks outside RSICD (EuroSAT RGB / MS, NWPU VHR-10 dev, VQA phrasing), built on fixtures in the
official layouts, scored end to end with the chance encoder, and their "outside RSICD" summary line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geovec.bench.encoders import load_encoder
from geovec.bench.outside import OUTSIDE_RSICD
from geovec.bench.report import outside_rsicd, paired_comparison, summary_markdown
from geovec.bench.runner import RunConfig, result_dir, run_benchmark
from geovec.bench.task_data import BuildContext
from geovec.bench.tasks import get_task, tasks_in
from tests.bench.formats import write_outside_data
from tests.bench.test_dev_vqa import _rsicd

@pytest.fixture
def data_root(tmp_path):
    return write_outside_data(_rsicd(tmp_path / "data"))


def ctx(root, tmp_path):
    return BuildContext(root, tmp_path / "cache", 0)


def test_registered_in_the_dev_suite():
    names = [t.name for t in tasks_in("rsmeb-dev")]
    assert set(OUTSIDE_RSICD) <= set(names)
    assert get_task("dev-VHR10-referring").query_kind == "referring"
    assert get_task("dev-VHR10-box-class").candidate_modalities == ("text",)


def test_eurosat_tasks(data_root, tmp_path):
    from geovec.inputs.raster import read_image

    rgb = get_task("dev-EuroSAT-RGB-scene").build(ctx(data_root, tmp_path))
    assert len(rgb.queries) == 20 and len(rgb.candidates) == 10
    assert {"text": "a remote sensing image of sea or lake."} in rgb.candidates
    ms = get_task("dev-EuroSAT-MS-scene").build(ctx(data_root, tmp_path))
    assert len(ms.queries) == 10 and all(str(q["image"]).endswith(".tif") for q in ms.queries)
    assert set(ms.query_facets["geo_split"]) <= {"train", "eval", "buffer"} and "eval" in ms.query_facets["geo_split"]
    # the query is the file: the model reads it through the Sentinel-2 path (B4, B3, B2; DN 0-3000 as 0-255)
    px = read_image(ms.queries[0]["image"]).pixels
    assert px.shape == (16, 16, 3) and tuple(px[0, 0]) in {(255, 127, 0), (255, 128, 0)}


def test_vhr10_tasks_on_the_dev_images_only(data_root, tmp_path):
    from geovec.data.nwpu_vhr10 import is_dev_image

    c = ctx(data_root, tmp_path)
    box = get_task("dev-VHR10-box-class").build(c)
    gt = {p.stem: p.read_text() for p in (data_root / "nwpu_vhr10" / "ground_truth").glob("*.txt")}
    dev_ids = [i for i in gt if is_dev_image(i)]
    n_dev = sum(len([ln for ln in gt[i].splitlines() if ln.strip()]) for i in dev_ids)
    assert len(box.queries) == n_dev and all("box" in q for q in box.queries)
    assert all(str(q["image"]).rsplit("/", 1)[1][:3] in dev_ids for q in box.queries)
    assert set(box.query_facets) == {"class", "size"} and box.query_clusters is not None

    ref = get_task("dev-VHR10-referring").build(c)
    texts = [q["text"] for q in ref.queries]
    assert {"the leftmost storage tank", "the rightmost storage tank", "the airplane"} <= set(texts)
    for q, g, grp in zip(ref.queries, ref.gold, ref.query_groups):
        assert ref.candidate_groups[g[0]] == grp and ref.candidates[g[0]]["image"] == q["image"]
    # the single-object image (023) asks nothing: one candidate is no choice
    assert set(ref.query_groups) == {"010", "015", "031"} and "the ship" in texts

    rr = get_task("dev-VHR10-region-region").build(c)
    for q, gold, ex in zip(rr.queries, rr.gold, rr.exclude):
        own = [j for j, cand in enumerate(rr.candidates) if cand["image"] == q["image"]]
        assert sorted(ex) == own and not set(gold) & set(own)


def test_vqa_phrasing_pairs_the_same_questions(data_root, tmp_path):
    data = get_task("dev-VQA-phrasing").build(ctx(data_root, tmp_path))
    held, tmpl = data.parts["held_out"], data.parts["in_template"]
    assert data.main_parts == ("held_out",) and data.info["paired_parts"] == ("in_template", "held_out")
    assert len(held.queries) == len(tmpl.queries) > 0
    assert [q["image"] for q in held.queries] == [q["image"] for q in tmpl.queries]
    assert list(held.query_labels) == list(tmpl.query_labels) and held.query_clusters == tmpl.query_clusters
    assert all(a["text"] != b["text"] for a, b in zip(held.queries, tmpl.queries))
    count_answers = {c["text"] for c, t in zip(held.candidates, held.candidate_groups) if t == "count"}
    assert count_answers and not any(a.isdigit() for a in count_answers)  # "three", not "3"


def test_chance_run_reports_facets_paired_parts_and_the_outside_line(data_root, tmp_path):
    specs = [get_task(t) for t in OUTSIDE_RSICD]
    recs = {}
    for dim in (64, 32):
        enc = load_encoder(f"chance:{dim}")
        cfg = RunConfig(data_root, tmp_path / "out", tmp_path / "cache", progress=False, n_boot=200)
        recs[dim] = {r["task_name"]: r for r in run_benchmark(specs, enc, cfg, log=lambda *_: None)}
        folder = result_dir(tmp_path / "out", enc)
    assert all(r["status"] == "ok" for r in recs[64].values())
    sc = recs[64]["dev-VHR10-box-class"]["scores"]["dev"][0]
    assert set(sc["p@1_by_size"]) <= {"<32 px", "32-96 px", ">96 px"} and sum(sc["n_by_class"].values()) == sc["n_queries"]
    assert all(len(ci) == 2 for ci in sc["p@1_ci95_by_class"].values())
    vqa = recs[64]["dev-VQA-phrasing"]["scores"]["val"][0]
    d = vqa["held_out_minus_in_template"]
    assert d["ci95"][0] <= d["delta"] <= d["ci95"][1] and "p@1_by_label" in vqa["parts"]["in_template"]
    out = outside_rsicd(folder, n_boot=200)
    mains = [recs[32][t]["scores"][next(iter(recs[32][t]["scores"]))][0]["main_score"] for t in OUTSIDE_RSICD]
    assert out["score"] == pytest.approx(np.mean(mains)) and out["ci95"][0] <= out["score"] <= out["ci95"][1]
    text = summary_markdown(folder)
    assert "**outside RSICD**" in text and "by size:" in text and "held_out - in_template" in text
    rows = paired_comparison(result_dir(tmp_path / "out", load_encoder("chance:64")), folder, n_boot=200)
    mean_row = next(r for r in rows if r["task"] == "outside RSICD (mean)")
    assert mean_row["delta"] == pytest.approx(mean_row["b"] - mean_row["a"]) and "verdict" in mean_row
    # without every outside task the line is left out rather than averaging a subset
    (folder / "per_query" / "dev-VQA-phrasing.json").unlink()
    assert outside_rsicd(folder) is None and "outside RSICD" not in summary_markdown(folder)
    json.dumps(out)


@pytest.mark.shared_data
def test_real_outside_tasks(shared_data, tmp_path):
    from geovec.data import NWPUVHR10
    from geovec.inputs.raster import read_image

    c = BuildContext(shared_data, tmp_path / "cache", 0)
    rgb = get_task("dev-EuroSAT-RGB-scene").build(c)
    assert (len(rgb.queries), len(rgb.candidates)) == (1000, 10)
    ms = get_task("dev-EuroSAT-MS-scene").build(c)
    assert len(ms.queries) == 131 and set(ms.query_facets["geo_split"]) == {"train", "eval"}
    px = read_image(ms.queries[0]["image"]).pixels.astype(float)
    assert px.shape == (64, 64, 3) and 20 < px.mean() < 200  # true colour, neither black nor saturated
    train_images = {s["image"] for s in NWPUVHR10(shared_data / "nwpu_vhr10", "train").samples}
    box = get_task("dev-VHR10-box-class").build(c)
    assert 400 < len(box.queries) < 800 and not {q["image"] for q in box.queries} & train_images
    ref = get_task("dev-VHR10-referring").build(c)
    assert len(ref.queries) > 150 and len(set(q["text"] for q in ref.queries)) > 30
    vqa = get_task("dev-VQA-phrasing").build(c)
    assert len(vqa.parts["held_out"].queries) == len(get_task("dev-RSICD-vqa").build(c).queries)
