import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rasterio.transform import from_origin
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from geovec.embed import EmbedJob, iter_records
from tests.conftest import scene, write_geotiff

runner = CliRunner()


@pytest.fixture
def use_session_model(monkeypatch, model):
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: model)


@pytest.fixture
def archive(image_dir):
    write_geotiff(image_dir / "sub" / "scene.tif", "EPSG:3857", from_origin(665000, 6650000, 15.8, 15.8),
                  np.moveaxis(scene(5, 64), -1, 0))
    (image_dir / "sub" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return image_dir


def test_folder_with_one_corrupt_file(use_session_model, archive, tmp_path, model):
    out = tmp_path / "emb.parquet"
    res = runner.invoke(app, ["embed", str(archive), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "corrupt.jpg" in res.output and "1 failed" in res.output and "embedded 5 new" in res.output
    table = pq.read_table(out)
    ids = table["id"].to_pylist()
    assert len(ids) == 5 and not any(i.endswith("corrupt.jpg") for i in ids)
    assert table.schema.field("embedding").type.list_size == model.embed_dim
    meta = json.loads(table.schema.metadata[b"geovec"])
    assert meta["model_id"] == model.model_id and meta["dimension"] == model.embed_dim
    rows = {r["id"]: r for r in table.to_pylist()}
    tif = rows[str(archive / "sub" / "scene.tif")]
    assert tif["centre_lat"] == pytest.approx(51.12, abs=0.05) and tif["geometry"] is not None  # WKB footprint
    assert tif["model_revision"] == model.revision
    jpg = rows[str(archive / "scene_0.jpg")]
    assert jpg["centre_lat"] is None and jpg["geometry"] is None
    expected = model.encode([archive / "scene_0.jpg"])[0]
    assert np.allclose(jpg["embedding"], expected, atol=1e-5)
    assert not (tmp_path / "emb.parquet.partial").exists()


def test_interrupted_job_resumes_without_redoing_work(model, image_dir, tmp_path, monkeypatch):
    records = list(iter_records([image_dir]))
    out = tmp_path / "r.parquet"
    calls: list[int] = []
    real = model.encode_partial

    def flaky(items, **kw):
        calls.append(len(items))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed ctrl-c during the second chunk
        return real(items, **kw)

    monkeypatch.setattr(model, "encode_partial", flaky)
    with pytest.raises(KeyboardInterrupt):
        EmbedJob(model, out, chunk_size=2).run(records, progress=False)
    assert not out.exists() and len(list((tmp_path / "r.parquet.partial").glob("shard-*.parquet"))) == 1
    calls.clear()
    summary = EmbedJob(model, out, chunk_size=2).run(records, progress=False)
    assert summary.skipped_done == 2 and summary.embedded == 2 and calls == [2]
    assert pq.read_table(out)["id"].to_pylist() == [r.id for r in records]  # input order, nothing twice
    calls.clear()
    again = EmbedJob(model, out, chunk_size=2).run(records, progress=False)
    assert again.embedded == 0 and again.skipped_done == 4 and calls == []


def test_jsonl_items(use_session_model, tmp_path):
    Image.fromarray(scene(2, 96)).save(tmp_path / "p.png")
    lines = [
        {"id": "harbour", "text": "a harbour with cranes"},
        {"id": "region", "image": "p.png", "box": [0, 0, 40, 40], "lat": 10.0, "lon": 20.0},
        {"id": "badbox", "image": "p.png", "box": [0, 0, 400, 40]},
    ]
    src = tmp_path / "items.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    out = tmp_path / "j.parquet"
    res = runner.invoke(app, ["embed", str(src), "--out", str(out), "--task", "retrieval"])
    assert res.exit_code == 1
    assert "badbox" in res.output and "outside" in res.output and "not valid JSON" in res.output
    rows = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert set(rows) == {"harbour", "region"} and rows["region"]["centre_lat"] == 10.0


def test_info_and_help(use_session_model):
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0 and "dimension" in res.output and "geovec-compact" in res.output
    for cmd in (["--help"], ["embed", "--help"], ["info", "--help"]):
        assert runner.invoke(app, cmd).exit_code == 0
