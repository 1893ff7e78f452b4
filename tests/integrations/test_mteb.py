"""MTEB / MIEB: ``mteb.evaluate`` runs geovec (``GeoVecEncoder``) on a small local image-text retrieval task,
offline; the results it writes and the RSMEB result folders ``geovec bench`` writes both load with mteb's
result loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, scene

mteb = pytest.importorskip("mteb")

from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.models.model_meta import ModelMeta  # noqa: E402

from geovec.integrations.mteb import GeoVecEncoder, geovec_model_meta  # noqa: E402

CAPTIONS = ["many buildings and green trees are in a dense residential area",
            "a long runway with some planes next to a terminal building",
            "several storage tanks stand beside a harbour with boats"]


class LocalSceneRetrieval(AbsTaskRetrieval):
    """Three generated scenes (queries) and their three captions (corpus): i2t, built in memory, no download."""

    metadata = TaskMetadata(
        name="GeovecLocalSceneI2T", description="Tiny local image -> caption retrieval for geovec's tests.",
        reference=None, dataset={"path": "local/geovec-scenes", "revision": "local"}, type="Any2AnyRetrieval",
        category="i2t", modalities=["image", "text"], eval_splits=["test"], eval_langs=["eng-Latn"],
        main_score="ndcg_at_10", date=("2026-01-01", "2026-01-01"), domains=[], task_subtypes=[], license="cc-by-4.0",
        annotations_creators="derived", dialect=[], sample_creation="created", bibtex_citation="",
    )

    def load_data(self, num_proc=None, **kwargs) -> None:
        images = [Image.fromarray(scene(i, 96)) for i in range(3)]
        split = RetrievalSplitData(
            queries=Dataset.from_dict({"id": [f"q{i}" for i in range(3)], "image": images}),
            corpus=Dataset.from_dict({"id": [f"d{i}" for i in range(3)], "text": CAPTIONS}),
            relevant_docs={f"q{i}": {f"d{i}": 1} for i in range(3)}, top_ranked=None)
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True


def test_mteb_evaluates_geovec_on_a_local_task(model, tmp_path):
    enc = GeoVecEncoder(model=model)
    calls = []
    real_encode = model.encode

    def spy(items, **kw):
        calls.append((kw.get("prompt_name"), kw.get("prompt"), [sorted(it) for it in items]))
        return real_encode(items, **kw)

    enc.model = type("Spy", (), {"encode": staticmethod(spy), "prompts": model.prompts,
                                  "embed_dim": model.embed_dim})()
    cache = mteb.ResultCache(cache_path=tmp_path / "mteb")
    result = mteb.evaluate(enc, LocalSceneRetrieval(), cache=cache, show_progress_bar=False)
    task_result = result.task_results[0]
    score = task_result.get_score()
    assert task_result.task_name == "GeovecLocalSceneI2T" and 0.0 <= score <= 1.0
    # queries are images with the retrieval query instruction, documents texts with the generic one
    assert ("query", None, [["image"]] * 3) in calls and ("document", None, [["text"]] * 3) in calls
    # what mteb wrote loads back with its own loader, under the ModelMeta geovec gives it
    loaded = cache.load_results(include_remote=False)
    (mr,) = loaded.model_results
    assert mr.model_name == "geovec/geovec-compact" and mr.model_revision == model.revision
    assert mr.task_results[0].get_score() == pytest.approx(score)
    meta = geovec_model_meta(model)
    assert meta.embed_dim == 768 and meta.modalities == ["image", "text"] and meta.release_date is not None


def _load(cache_root: Path):
    return mteb.ResultCache(cache_path=cache_root).load_results(include_remote=False)


def test_rsmeb_result_folders_load_with_mtebs_loader(tmp_path):
    src = REPO / "benchmarks" / "results" / "rsmeb-dev" / "geovec-compact"
    assert src.is_dir(), "the rsmeb-dev result folders are committed under benchmarks/results"
    dest = tmp_path / "cache" / "results" / "geovec-compact"
    for rev in sorted(p for p in src.iterdir() if p.is_dir()):  # the committed folders, as geovec bench wrote them
        shutil.copytree(rev, dest / rev.name, ignore=shutil.ignore_patterns("per_query", "*.md"))
    loaded = _load(tmp_path / "cache")
    assert {m.model_revision for m in loaded.model_results} == {p.name for p in src.iterdir() if p.is_dir()}
    for mr in loaded.model_results:
        folder = dest / mr.model_revision
        for tr in mr.task_results:
            rec = json.loads((folder / f"{tr.task_name}.json").read_text())
            split = next(iter(rec["scores"]))
            assert tr.get_score() == pytest.approx(rec["scores"][split][0]["main_score"])
            assert tr.dataset_revision == rec["dataset_revision"] and tr.evaluation_time == rec["evaluation_time"]


def test_a_fresh_rsmeb_run_with_a_task_not_run_loads_and_its_model_meta_validates(tmp_path):
    from tests.bench.formats import write_caption_dataset
    from tests.bench.test_runner import ENTRIES, OracleModel

    from geovec.bench.encoders import BenchEncoder
    from geovec.bench.runner import RunConfig, result_dir, run_benchmark
    from geovec.bench.tasks import get_task

    data = tmp_path / "data"
    write_caption_dataset(data / "rsicd", "RSICD_images", "dataset_rsicd.json", ENTRIES)
    enc = BenchEncoder(OracleModel())
    cfg = RunConfig(data_root=data, out_dir=tmp_path / "cache" / "results", cache_dir=tmp_path / "emb", progress=False)
    recs = run_benchmark([get_task("RSICD-retrieval"), get_task("UCM-captions-retrieval")], enc, cfg,
                         log=lambda *_: None)
    assert [r["status"] for r in recs] == ["ok", "not run"]  # UCM's data is absent here
    loaded = _load(tmp_path / "cache")
    (mr,) = loaded.model_results
    scores = {t.task_name: t for t in mr.task_results}
    assert mr.model_name == "geovec/oracle" and scores["RSICD-retrieval"].get_score() == 1.0
    assert scores["UCM-captions-retrieval"].scores == {}  # not run: loads, with no score
    meta_text = (result_dir(cfg.out_dir, enc) / "model_meta.json").read_text()
    meta = ModelMeta.model_validate_json_resolved(meta_text)
    assert (meta.name, meta.revision, meta.similarity_fn_name.value) == ("geovec/oracle", "r1", "cosine")
    assert np.isclose(recs[0]["scores"]["test"][0]["main_score"], 1.0)
