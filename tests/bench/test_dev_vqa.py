"""dev-RSICD-vqa: derived questions on RSICD val, built on a small RSICD layout written here (and on the real
val split when ../shared/data is there)."""

from __future__ import annotations

import numpy as np
import pytest

from geovec.bench.runner import score_task
from geovec.bench.task_data import BuildContext
from geovec.bench.tasks import get_task
from tests.bench.formats import write_caption_dataset

CAPTIONS = {
    "Airport": ["three planes are parked on an airport .", "3 planes are near a runway .",
                "some buildings are near the airport ."],
    "Bridge": ["a bridge is over a river .", "there is a bridge on the river with some cars ."],
    "DenseResidential": ["many buildings are along two roads .", "dense buildings and some green trees ."],
}


def _rsicd(root, n_train=21, n_val=3):
    entries = [(f"{c.lower()}_{k}.jpg", "train" if k < n_train else "val", caps)
               for c, caps in CAPTIONS.items() for k in range(n_train + n_val)]
    write_caption_dataset(root / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    (root / "rsicd" / "classes").mkdir()
    for c in CAPTIONS:
        (root / "rsicd" / "classes" / f"{c}.txt").write_text(
            "".join(f"{c.lower()}_{k}.jpg\n" for k in range(n_train + n_val)))
    return root


def test_the_dev_task_builds_with_types_baselines_and_image_clusters(tmp_path):
    spec = get_task("dev-RSICD-vqa")
    assert (spec.suite, spec.meta_task, spec.split, spec.main_score) == ("rsmeb-dev", "vqa", "val", "p@1")
    data = spec.build(BuildContext(_rsicd(tmp_path / "data"), tmp_path / "cache"))
    assert len({q["image"] for q in data.queries}) == 9  # the val images only
    assert all("_2" in str(q["image"]) for q in data.queries)  # k = 21..23: "_21", "_22", "_23"
    types = set(data.query_labels)
    assert {"presence", "count", "scene", "rural_urban"} <= types
    # candidates = the answers of the question's type, ranked within the type
    for q, g in enumerate(data.gold):
        assert data.candidate_groups[g[0]] == data.query_groups[q] == data.query_labels[q]
    texts = {(t, c["text"]) for t, c in zip(data.candidate_groups, data.candidates)}
    assert {("count", "3"), ("count", "1"), ("scene", "airport"), ("scene", "dense residential"),
            ("rural_urban", "urban")} <= texts
    base = data.info["majority_baseline"]
    assert base["scene"] == {"answer": "airport", "p@1": pytest.approx(1 / 3), "n": 9}
    assert sum(v["n"] for v in base.values()) == len(data.queries)
    assert len(set(data.query_clusters)) == 9  # the questions of one image are one bootstrap cluster
    # scored as the runner does: per-type P@1, n and interval
    rng = np.random.default_rng(0)
    scores, qs = score_task(data, {"": (rng.normal(size=(len(data.queries), 8)),
                                        rng.normal(size=(len(data.candidates), 8)))}, "p@1", n_boot=200)
    assert set(scores["p@1_by_label"]) == types and sum(scores["n_by_label"].values()) == qs.n
    for t, (lo, hi) in scores["p@1_ci95_by_label"].items():
        assert lo <= scores["p@1_by_label"][t] <= hi
    assert "clustered" in scores["ci_method"]


def test_the_dev_task_on_rsicd_val(shared_data, tmp_path):
    data = get_task("dev-RSICD-vqa").build(BuildContext(shared_data, tmp_path))
    assert len({q["image"] for q in data.queries}) == 491
    n = data.info["question_types"]
    assert n["scene"] == 491 and n["presence"] > 1500 and n["count"] > 150
    base = data.info["majority_baseline"]
    assert base["presence"]["p@1"] < 0.55 and base["count"]["p@1"] < 0.6
    assert data.info["answer_vocabulary"]["scene"] == 31
