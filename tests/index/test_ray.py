"""Scale-out on a local Ray instance: the Ray path gives exactly the single-process results."""

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray[data] (the 'ray' extra) is not installed")

from geovec.index.build import build_index  # noqa: E402
from geovec.index.chips import ChipSpec  # noqa: E402
from geovec.index.store import ChipStore  # noqa: E402

from tests.index import geovec_fake_model  # noqa: E402
from tests.index.geovec_fake_model import FakeGeoModel, make_fake_model  # noqa: E402

SPEC = ChipSpec(96, 16)


@pytest.fixture(scope="module")
def local_ray():
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(geovec_fake_model)  # workers get the fake model by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _rows(db):
    return {r["id"]: r for r in ChipStore(db).table.to_arrow().to_pylist()}


def test_ray_index_build_equals_single_process(scenes, tmp_path, local_ray):
    good = scenes / "utm32.tif"
    (scenes / "truncated.tif").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    local = build_index([scenes], tmp_path / "local", FakeGeoModel(), SPEC, progress=False)
    dist = build_index([scenes], tmp_path / "ray", FakeGeoModel(), SPEC, ray_address="local",
                       ray_options={"model_factory": make_fake_model, "concurrency": 2, "rows_per_task": 8})
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == local.rows == dist.rows
    for k in a:
        assert a[k]["vector"] == b[k]["vector"]  # bit-identical
        assert {c: v for c, v in a[k].items() if c != "vector"} == {c: v for c, v in b[k].items() if c != "vector"}
    assert set(local.failed) == set(dist.failed) == {str(scenes / "truncated.tif")}
    assert not list((tmp_path / "ray" / "_shards").glob("*.parquet"))  # shards ingested and removed
    # rerun: nothing left to do, nothing duplicated
    again = build_index([scenes], tmp_path / "ray", FakeGeoModel(), SPEC, ray_address="local",
                        ray_options={"model_factory": make_fake_model})
    assert again.chips_skipped_done == len(b) and len(ChipStore(tmp_path / "ray")) == len(b)


def test_embed_items_ray_equals_encode(scenes, tmp_path, local_ray):
    import pyarrow.parquet as pq

    from geovec.embed.ray_embed import embed_items_ray

    items = [{"image": str(scenes / "utm31.tif")}, "a harbour", {"lat": 52.0, "lon": 6.0, "text": "dunes"},
             {"image": str(scenes / "plain.png"), "box": [0, 0, 50, 40]}, {"image": str(scenes / "nope.png")}]
    rows = [{"id": f"r{i}", "item": it} for i, it in enumerate(items)]
    shards = embed_items_ray(rows, make_fake_model, tmp_path / "out", address="local", task="retrieval",
                             side="document", rows_per_task=2)
    got = {r["id"]: r for s in shards for r in pq.read_table(s).to_pylist()}
    assert set(got) == {f"r{i}" for i in range(5)}
    expected = FakeGeoModel().encode(items[:4], task="retrieval", side="document")
    for i in range(4):
        assert got[f"r{i}"]["error"] is None
        assert np.array_equal(np.asarray(got[f"r{i}"]["embedding"], np.float32), expected[i])
    assert "does not exist" in got["r4"]["error"] and np.isnan(got["r4"]["embedding"]).all()


def test_geovec_embed_ray_path_equals_the_embed_job(scenes, tmp_path, local_ray):
    import pyarrow.parquet as pq

    from geovec.embed import EmbedJob, iter_records
    from geovec.embed.ray_embed import embed_records_with_ray

    (scenes / "bad.png").write_bytes(b"not a png")
    records = list(iter_records([scenes]))
    local = EmbedJob(FakeGeoModel(), tmp_path / "local.parquet", with_location=True).run(records, progress=False)
    dist = embed_records_with_ray(records, tmp_path / "ray.parquet", ray_address="local", with_location=True,
                                  model_factory=make_fake_model)
    assert (dist.embedded, dist.total) == (local.embedded, local.total) and set(dist.failed) == set(local.failed)
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert a.schema.metadata == b.schema.metadata
    assert a.to_pylist() == b.to_pylist()  # same rows, same order, bit-identical embeddings


def test_geovec_embed_ray_honours_resume(scenes, tmp_path, local_ray):
    """Rows a killed Ray job already wrote are taken on the rerun (same model, task, side, instruction);
    --no-resume embeds everything again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geovec.embed import iter_records
    from geovec.embed.ray_embed import embed_records_with_ray, run_key

    records = list(iter_records([scenes]))
    out = tmp_path / "ray.parquet"
    work = tmp_path / "ray.parquet.partial" / "ray"
    work.mkdir(parents=True)
    marker = np.full(32, 0.25, np.float32)
    key = run_key(FakeGeoModel(), None, "query", None)
    left = [{"id": records[0].id, "embedding": marker.tolist(), "error": None, "run": key},
            {"id": records[1].id, "embedding": marker.tolist(), "error": None, "run": "another model"}]
    pq.write_table(pa.Table.from_pylist(left), work / "killed-job.parquet")
    (work / "cut-short.parquet").write_bytes(b"PAR1 half a shard")
    s = embed_records_with_ray(records, out, ray_address="local", model_factory=make_fake_model)
    assert s.embedded == len(records) and not s.failed
    rows = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert np.array_equal(np.asarray(rows[records[0].id]["embedding"], np.float32), marker)  # taken, not redone
    assert not np.array_equal(np.asarray(rows[records[1].id]["embedding"], np.float32), marker)  # other run: redone
    again = embed_records_with_ray(records, out, ray_address="local", model_factory=make_fake_model)
    assert again.skipped_done == len(records) and again.embedded == 0
    # --no-resume: the left-over rows of a killed job are dropped with the rest, everything is embedded again
    work.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(left[:1]), work / "killed-job.parquet")
    fresh = embed_records_with_ray(records, out, ray_address="local", model_factory=make_fake_model, resume=False)
    assert fresh.embedded == len(records) and fresh.skipped_done == 0
    rows = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert not np.array_equal(np.asarray(rows[records[0].id]["embedding"], np.float32), marker)
