import base64
import io

import numpy as np
import pytest
from PIL import Image

from geovec.index.chips import ChipSpec, plan_chips, read_chip


def png_b64(pixels: np.ndarray, data_url: bool = True) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    b = base64.b64encode(buf.getvalue()).decode()
    return "data:image/png;base64," + b if data_url else b


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "fake-geo" and body["dimension"] == 32 and body["chips"] > 0


def test_openai_shape_for_text(client, served):
    _, _, model = served
    r = client.post("/v1/embeddings", json={"input": ["a harbour", "a runway"], "model": "fake-geo"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "fake-geo" and set(body["usage"]) == {"prompt_tokens", "total_tokens"}
    assert [d["index"] for d in body["data"]] == [0, 1] and body["data"][0]["object"] == "embedding"
    expected = model.encode(["a harbour", "a runway"])
    assert np.allclose(np.array([d["embedding"] for d in body["data"]]), expected, atol=1e-6)
    # a single string, and base64 float32 (what the openai client requests by default)
    r = client.post("/v1/embeddings", json={"input": "a harbour", "encoding_format": "base64"})
    v = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), "<f4")
    assert np.allclose(v, expected[0], atol=1e-6)


def test_multimodal_items(client, served):
    _, scenes, model = served
    px = read_chip(plan_chips(scenes / "utm32.tif", ChipSpec(64))[0]).pixels
    items = [{"image": png_b64(px), "box": [0, 0, 32, 32], "text": "this field", "instruction": "Find it."},
             {"image": {"base64": png_b64(px, data_url=False)}},
             {"image": {"path": "utm32.tif"}, "lat": 52.0, "lon": 6.0},
             {"lat": 52.0, "lon": 6.0}]
    r = client.post("/v1/embeddings", json={"input": items, "task": "region"})
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in r.json()["data"]])
    expected = model.encode([{"image": px, "box": [0, 0, 32, 32], "text": "this field", "instruction": "Find it."},
                             {"image": px}, {"image": str(scenes / "utm32.tif"), "lat": 52.0, "lon": 6.0},
                             {"lat": 52.0, "lon": 6.0}], task="region")
    assert np.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("item,problem", [
    ({"text": "ok", "box": [0, 0, 10, 10]}, "a box needs an image"),
    ({"lat": 95, "lon": 0}, "out of range"),
    ({"image": "data:image/png;base64,!!!"}, "not valid base64"),
    ({"image": {"url": "http://example.com/a.png"}}, "not fetched"),
    ({"image": "https://example.com/a.png"}, "not fetched"),
    ({"image": {"base64": base64.b64encode(b"not an image").decode()}}, "cannot decode"),
    ({"colour": "red"}, "unknown key"),
    ([1, 2, 3], "token-id arrays"),
    ("   ", "empty"),
])
def test_bad_item_gives_422_naming_item_and_problem(client, item, problem):
    r = client.post("/v1/embeddings", json={"input": ["fine", item]})
    assert r.status_code == 422, r.text
    d = r.json()["detail"][0]
    assert d["item"] == 1 and d["loc"] == ["body", "input", 1] and problem in d["problem"]
    assert d["msg"].startswith("item 1")


@pytest.mark.parametrize("path", ["../db/geovec_index.json", "/etc/passwd", "../../../../../../etc/hostname",
                                  "sub/../../db/geovec_index.json"])
def test_no_file_outside_the_roots(client, path):
    r = client.post("/v1/embeddings", json={"input": [{"image": {"path": path}}]})
    assert r.status_code == 422 and "outside the server's allowed roots" in r.json()["detail"][0]["problem"]


def test_symlink_out_of_root_is_refused(client, served, tmp_path):
    _, scenes, _ = served
    secret = tmp_path / "secret.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(secret)
    link = scenes / "link.png"
    link.symlink_to(secret)
    try:
        r = client.post("/v1/embeddings", json={"input": [{"image": "link.png"}]})
        assert r.status_code == 422 and "outside" in r.json()["detail"][0]["problem"]
    finally:
        link.unlink()


def test_size_limits(client):
    big = np.zeros((400, 400, 3), np.uint8)  # 160k pixels > the 90k configured
    r = client.post("/v1/embeddings", json={"input": [{"image": png_b64(big)}]})
    assert r.status_code == 422 and "pixels" in r.json()["detail"][0]["problem"]
    r = client.post("/v1/embeddings", content=b'{"input": "' + b"a" * 2_100_000 + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/embeddings", json={"input": ["x"] * 17})
    assert r.status_code == 413 and "at most 16" in r.json()["detail"]


def test_wrong_model_and_dimensions(client):
    assert client.post("/v1/embeddings", json={"input": "x", "model": "text-embedding-3-small"}).status_code == 404
    assert client.post("/v1/embeddings", json={"input": "x", "dimensions": 8}).status_code == 422


def test_search_endpoint(client, served):
    _, scenes, _ = served
    chip = plan_chips(scenes / "merc.tif", ChipSpec(64))[2]
    px = read_chip(chip).pixels
    r = client.post("/search", json={"image": png_b64(px), "k": 3})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["task"] == "retrieval"
    top = fc["features"][0]
    assert top["id"] == chip.id and top["properties"]["score"] == pytest.approx(1.0, abs=1e-5)
    assert top["geometry"]["type"] == "Polygon"
    thumb = client.get(top["properties"]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 64)
    r = client.post("/search", json={"text": "field", "near": {"lat": 52.03, "lon": 5.95}, "within_km": 3, "k": 5})
    fc = r.json()
    assert r.status_code == 200 and fc["task"] == "geo" and fc["features"]
    assert all(f["properties"]["distance_km"] <= 3 for f in fc["features"])
    r = client.post("/search", json={"text": "x", "bbox": [5.9, 51.9, 6.1, 52.1], "k": 500})
    assert r.status_code == 422
    r = client.post("/search", json={"within_km": 3})
    assert r.status_code == 422
    r = client.post("/search", json={"image": {"path": "/etc/passwd"}})
    assert r.status_code == 422 and "outside" in r.json()["detail"][0]["problem"]
    assert client.get("/thumbnail", params={"id": "/etc/passwd#0,0,10,10"}).status_code == 404


def test_page_and_overview(client):
    r = client.get("/")
    assert r.status_code == 200 and 'src="/static/vendor/leaflet/leaflet.js"' in r.text and "http" not in r.text
    js = client.get("/static/app.js").text
    assert "fetch(\"/search\"" in js and "http://" not in js and "https://" not in js  # no CDN, no tile server
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    ov = client.get("/index/overview").json()
    assert ov["chips"] > ov["placed"] > 0 and len(ov["boxes"]) == ov["placed"] and len(ov["extent"]) == 4
