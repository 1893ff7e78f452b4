"""Runner logic with fake models (the encode contract), fixtures in the official RSICD layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from tests.bench.formats import write_caption_dataset

from geovec.bench.cache import EmbeddingCache
from geovec.bench.encoders import BenchEncoder, ChanceEncoder
from geovec.bench.report import comparison_markdown, summary_markdown
from geovec.bench.runner import RunConfig, result_dir, run_benchmark
from geovec.bench.tasks import get_task

ENTRIES = [(f"scene_{i}.jpg", "test", [f"caption {i} {w} ." for w in ("alpha", "beta", "gamma")]) for i in range(6)]


class OracleModel:
    """Embeds scene i's image and captions as the same one-hot vector: a perfect retrieval model.
    Records every item it is asked to embed."""

    model_id = "oracle"
    revision = "r1"

    def __init__(self):
        self.calls: list[dict] = []

    def _index(self, item: dict) -> int:
        if "image" in item:
            return int(Path(item["image"]).stem.split("_")[1])
        return int(item["text"].split()[1])

    def encode(self, items, batch_size=32, show_progress_bar=None):
        self.calls.extend(items)
        out = np.zeros((len(items), 8), dtype=np.float32)
        for i, it in enumerate(items):
            out[i, self._index(it)] = 1.0
        return out


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    write_caption_dataset(root / "rsicd", "RSICD_images", "dataset_rsicd.json", ENTRIES)
    return root


def _cfg(tmp_path, data_root, **kw):
    return RunConfig(data_root=data_root, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, **kw)


SPECS = [get_task("RSICD-retrieval"), get_task("AID-scene"), get_task("UCM-captions-retrieval")]


def test_results_are_written_mteb_style(tmp_path, data_root):
    enc = BenchEncoder(OracleModel())
    recs = run_benchmark(SPECS, enc, _cfg(tmp_path, data_root), log=lambda *_: None)
    folder = result_dir(tmp_path / "out", enc)
    assert folder == tmp_path / "out" / "oracle" / "r1"
    r = json.loads((folder / "RSICD-retrieval.json").read_text())
    assert r["status"] == "ok" and r["task_name"] == "RSICD-retrieval" and r["dataset"] == "RSICD"
    assert (r["model_name"], r["model_revision"]) == ("oracle", "r1")
    # the fields MTEB's result files carry
    for key in ("dataset_revision", "task_name", "mteb_version", "scores", "evaluation_time", "kg_co2_emissions"):
        assert key in r
    assert len(r["dataset_revision"]) == 40 and r["protocol"].startswith("RemoteCLIP")
    s = r["scores"]["test"][0]
    assert s["languages"] == ["eng-Latn"] and s["hf_subset"] == "default"
    assert s["main_score"] == s["mR"] == 1.0 and s["i2t_hit@1"] == s["t2i_hit@1"] == 1.0
    assert s["parts"]["i2t"]["recall@1"] == pytest.approx(1 / 3)  # 3 golds, one at rank 1
    # 6 image queries + 18 caption-slot queries, each with an interval
    assert r["evaluation_time"] > 0 and s["n_queries"] == r["n_queries"] == 6 + 18
    assert s["ci95"] == [1.0, 1.0]
    assert r["task_metadata"]["query_modalities"] == ["image", "text"]
    assert recs[1]["status"] == "not run" and recs[2]["status"] == "not run"
    per_query = json.loads((folder / "per_query" / "RSICD-retrieval.json").read_text())
    assert len(per_query["values"]) == 24 and per_query["dataset_revision"] == r["dataset_revision"]
    meta = json.loads((folder / "model_meta.json").read_text())
    assert meta["name"] == "geovec/oracle" and meta["revision"] == "r1"  # MTEB's organization/model naming


def test_missing_data_is_reported_not_run_with_the_reason(tmp_path, data_root):
    enc = BenchEncoder(OracleModel())
    run_benchmark(SPECS, enc, _cfg(tmp_path, data_root), log=lambda *_: None)
    r = json.loads((result_dir(tmp_path / "out", enc) / "UCM-captions-retrieval.json").read_text())
    assert r["status"] == "not run" and r["scores"] == {}  # MTEB's fields, no score
    assert "imgs" in r["reason"] and "dataset.json" in r["reason"]
    md = summary_markdown(result_dir(tmp_path / "out", enc))
    assert "| UCM-captions-retrieval |" in md and "not run" in md
    assert "| cross-modal retrieval | 100.00 | 1/2 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| cross-modal retrieval | RSICD-retrieval"))
    assert "| 100.00 | 100.0-100.0 | 24 |" in row and "RemoteCLIP 35.26" in row


def test_instructions_follow_the_task_kind_and_side(tmp_path, data_root):
    model = OracleModel()
    run_benchmark(SPECS[:1], BenchEncoder(model), _cfg(tmp_path, data_root), log=lambda *_: None)
    query = "Retrieve the remote sensing image or caption that matches this."
    assert {c["instruction"] for c in model.calls if "image" in c} == {query, "Represent the given remote sensing image."}
    assert {c["instruction"] for c in model.calls if "text" in c} == {query, "Represent the given text."}


def test_model_named_instructions_are_used_when_the_model_has_them(tmp_path, data_root):
    model = OracleModel()
    model.query_instruction = lambda task: f"Q[{task}]"
    model.document_instruction = lambda task, item: f"D[{task}:{'+'.join(item.order)}]"
    run_benchmark([get_task("RSICD-retrieval")], BenchEncoder(model), _cfg(tmp_path, data_root), log=lambda *_: None)
    assert {c["instruction"] for c in model.calls if "text" in c} == {"Q[retrieval]", "D[retrieval:text]"}
    assert {c["instruction"] for c in model.calls if "image" in c} == {"Q[retrieval]", "D[retrieval:image]"}


def test_interrupted_run_resumes_and_cached_embeddings_cost_nothing(tmp_path, data_root):
    model = OracleModel()
    enc = BenchEncoder(model)
    cfg = _cfg(tmp_path, data_root)
    run_benchmark(SPECS[:1], enc, cfg, log=lambda *_: None)
    first = len(model.calls)
    # 6 images x 2 instructions (query, document) + 18 distinct caption texts x 2: each distinct input embedded
    # once, though caption slots appear as queries and candidates of both the slot and the distinct-caption parts
    assert first == 6 * 2 + 18 * 2
    recs = run_benchmark(SPECS[:1], enc, cfg, log=lambda *_: None)  # finished tasks are skipped
    assert len(model.calls) == first and all(r.get("_skipped") for r in recs)
    (result_dir(tmp_path / "out", enc) / "RSICD-retrieval.json").unlink()  # as if interrupted before writing it
    recs = run_benchmark(SPECS[:1], enc, cfg, log=lambda *_: None)
    assert len(model.calls) == first  # recomputed from cached embeddings only
    assert recs[0]["timing"]["cache_misses"] == 0 and recs[0]["timing"]["cache_hits"] > 0
    assert recs[0]["scores"]["test"][0]["main_score"] == 1.0


def test_cache_keys_include_model_revision_and_instruction(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a = cache.keys([{"text": "a runway", "instruction": "x"}, {"text": "a runway", "instruction": "y"},
                    {"text": "a runway", "instruction": "x"}])
    assert a[0] != a[1] and a[0] == a[2]
    m1, m2 = OracleModel(), OracleModel()
    m2.revision = "r2"
    items = [{"text": "caption 1 a ."}]
    cache.embed(BenchEncoder(m1), items, progress=False)
    cache.embed(BenchEncoder(m1), items, progress=False)
    cache.embed(BenchEncoder(m2), items, progress=False)
    assert len(m1.calls) == 1 and len(m2.calls) == 1
    cache.close()


def test_chance_baseline_sits_at_chance(tmp_path):
    # the chance encoder over the whole fixture: scores near chance, and identical items share a vector
    enc = ChanceEncoder(dim=16, seed=3)
    v = enc.encode([{"text": "same"}, {"text": "same"}, {"text": "other"}])
    assert np.allclose(v[0], v[1]) and not np.allclose(v[0], v[2])
    assert np.allclose(np.linalg.norm(v, axis=1), 1)
    assert np.allclose(ChanceEncoder(dim=16, seed=3).encode([{"text": "same"}]), v[:1])


def test_comparison_table_across_models(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root)
    run_benchmark(SPECS[:1], BenchEncoder(OracleModel()), cfg, log=lambda *_: None)
    run_benchmark(SPECS[:1], BenchEncoder(ChanceEncoder()), cfg, log=lambda *_: None)
    md = comparison_markdown(tmp_path / "out")
    assert "oracle (r1)" in md and "chance (seed0-d64)" in md
    row = next(line for line in md.splitlines() if line.startswith("| RSICD-retrieval"))
    assert "100.00 (100.0-100.0)" in row


def test_paired_comparison_says_what_is_outside_the_noise(tmp_path, data_root):
    from geovec.bench.report import paired_comparison, paired_markdown, resolve_model_dir

    cfg = _cfg(tmp_path, data_root)
    run_benchmark(SPECS[:1], BenchEncoder(OracleModel()), cfg, log=lambda *_: None)
    run_benchmark(SPECS[:1], BenchEncoder(ChanceEncoder()), cfg, log=lambda *_: None)
    a, b = resolve_model_dir(tmp_path / "out", "chance"), resolve_model_dir(tmp_path / "out", "oracle/r1")
    row = paired_comparison(a, b)[0]
    assert row["task"] == "RSICD-retrieval" and row["delta"] > 0 and row["verdict"] == "better"
    assert paired_comparison(b, b)[0]["verdict"] == "no change"
    assert "| RSICD-retrieval | mR |" in paired_markdown(a, b)
    with pytest.raises(ValueError, match="no results for 'nope'"):
        resolve_model_dir(tmp_path / "out", "nope")


def test_an_object_without_the_contract_is_refused():
    with pytest.raises(TypeError, match="encode"):
        BenchEncoder(object())


class ClassOracle:
    """Images of class c and any text naming c embed as one-hot c (classes read from the file / the text)."""

    model_id, revision = "class-oracle", "r1"

    def __init__(self, classes):
        self.classes = classes

    def encode(self, items, batch_size=32, show_progress_bar=None):
        out = np.zeros((len(items), len(self.classes) + 1), dtype=np.float32)
        for i, it in enumerate(items):
            key = Path(it["image"]).parent.name.replace("_", " ") if "image" in it else it["text"]
            hit = [j for j, c in enumerate(self.classes) if c in key]
            out[i, hit[0] if hit else len(self.classes)] = 1.0
        return out


def test_scene_task_states_its_template_and_scores_the_prompt_ensemble(tmp_path):
    from tests.bench.formats import write_class_folders

    from geovec.data import NWPURESISC12

    classes = NWPURESISC12.classes
    write_class_folders(tmp_path / "data" / "nwpu_resisc12", {c: [f"{c}_001.jpg", f"{c}_002.jpg"] for c in classes})
    names = NWPURESISC12(tmp_path / "data" / "nwpu_resisc12").prompt_names
    assert sorted(names) == sorted(c.replace("_", " ") for c in classes)
    enc = BenchEncoder(ClassOracle(names))
    cfg = RunConfig(data_root=tmp_path / "data", out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                    progress=False, prompt_ensemble=True)
    rec = run_benchmark([get_task("dev-NWPU-RESISC12-scene")], enc, cfg, log=lambda *_: None)[0]
    s = rec["scores"]["all"][0]
    assert rec["task_info"]["template"] == "a remote sensing image of {}."
    assert "RS-TransCLIP" in rec["protocol"]
    assert s["n_queries"] == 24 and s["p@1"] == 1.0
    assert s["n_templates"] > 50 and s["p@1_prompt_ensemble"] == 1.0
    assert "template 'a remote sensing image of {}.'" in summary_markdown(result_dir(tmp_path / "out", enc))
