"""Regression tests of issue 12 for the server: no file read through a plain string (1), GDAL formats by
content (2), non-finite numbers (3), chunked oversized bodies (4), decompression bombs (5)."""

import base64
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import scene
from tests.hostile import bomb_png, write_bomb, write_tiff, write_vrt_as_tif


@pytest.fixture(scope="module")
def hostile(served, tmp_path_factory):
    """(client with --root = a folder of hostile files, that folder, the secret file outside it, model)."""
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    db, scenes, model = served
    base = tmp_path_factory.mktemp("hostile")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    secret = write_tiff(outside / "secret.tif", np.full((3, 16, 16), 77, np.uint8))
    Image.fromarray(np.full((16, 16, 3), 77, np.uint8)).save(outside / "secret.png")
    write_vrt_as_tif(root / "evil.tif", secret, size=16)
    write_bomb(root / "bomb.png")
    Image.fromarray(scene(1, 32)).save(root / "good.png")
    app = create_app(db, model, Limits(roots=[root], max_request_bytes=200_000, max_image_pixels=300 * 300))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, root, outside, model


def emb(r):
    assert r.status_code == 200, r.text
    return np.array([d["embedding"] for d in r.json()["data"]])


# --- 1 --------------------------------------------------------------------------------------------------------
def test_a_bare_string_is_always_text_never_a_file(hostile):
    c, root, outside, model = hostile
    for path in (str(outside / "secret.png"), str(root / "good.png"), "good.png", str(outside / "nothing.png")):
        got = emb(c.post("/v1/embeddings", json={"input": [path]}))
        assert np.allclose(got[0], model.encode([{"text": path}])[0], atol=1e-6)  # embedded as the text itself
    # the answer does not tell whether a file exists: same status, same kind of body
    a = c.post("/v1/embeddings", json={"input": str(outside / "secret.png")})
    b = c.post("/v1/embeddings", json={"input": str(outside / "no-such.png")})
    assert a.status_code == b.status_code == 200 and a.json().keys() == b.json().keys()


def test_without_root_no_path_is_read(served):
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app

    _, scenes, model = served
    with TestClient(create_app(None, model), raise_server_exceptions=False) as c:
        r = c.post("/v1/embeddings", json={"input": [{"image": str(scenes / "plain.png")}]})
        assert r.status_code == 422 and "does not read files by path" in r.json()["detail"][0]["problem"]
        assert emb(c.post("/v1/embeddings", json={"input": str(scenes / "plain.png")})).shape == (1, 32)


# --- 2 --------------------------------------------------------------------------------------------------------
def test_vrt_disguised_as_tif_under_the_root_is_refused(hostile):
    c = hostile[0]
    for image in ("evil.tif", {"path": "evil.tif"}):
        r = c.post("/v1/embeddings", json={"input": ["ok", {"image": image}]})
        assert r.status_code == 422, r.text
        d = r.json()["detail"][0]
        assert d["item"] == 1 and "VRT" in d["problem"]
    r = c.post("/search", json={"image": "evil.tif"})
    assert r.status_code == 422 and "VRT" in r.json()["detail"][0]["problem"]
    assert emb(c.post("/v1/embeddings", json={"input": [{"image": "good.png"}]})).shape == (1, 32)


# --- 3 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint,body,field", [
    ("/search", '{"text": "x", "near": {"lat": NaN, "lon": 0}}', "near.lat"),
    ("/search", '{"text": "x", "near": {"lat": 1, "lon": Infinity}}', "near.lon"),
    ("/search", '{"text": "x", "near": {"lat": 1, "lon": 2}, "within_km": NaN}', "within_km"),
    ("/search", '{"text": "x", "near": {"lat": 1, "lon": 2}, "within_km": 1e309}', "within_km"),
    ("/search", '{"text": "x", "k": NaN}', "k"),
    ("/search", '{"text": "x", "k": 1e309}', "k"),
    ("/search", '{"text": "x", "bbox": [0, 0, NaN, 1]}', "bbox.2"),
    ("/v1/embeddings", '{"input": "x", "dimensions": NaN}', "dimensions"),
    ("/v1/embeddings", '{"input": "x", "dimensions": -Infinity}', "dimensions"),
    ("/v1/embeddings", '{"input": "x", "dimensions": 1e309}', "dimensions"),
    ("/v1/embeddings", '{"inputs": NaN}', "input"),
])
def test_non_finite_numbers_are_422_naming_the_field(hostile, endpoint, body, field):
    c = hostile[0]
    r = c.post(endpoint, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, (r.status_code, r.text)
    fields = [d.get("field") for d in r.json()["detail"]]
    assert field in fields, r.json()
    json.loads(r.text)  # strict JSON: no bare NaN in the answer


def test_non_finite_numbers_inside_items_name_the_item(hostile):
    c = hostile[0]
    body = b'{"input": ["fine", {"lat": NaN, "lon": 0}, {"text": "t", "lat": 1e309, "lon": 1}]}'
    r = c.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["item"] == 1 and "finite" in r.json()["detail"][0]["problem"]


def test_lone_surrogates_are_422_not_500(hostile):
    c = hostile[0]
    for endpoint, body in (("/v1/embeddings", '{"input": ["\\ud800"]}'),
                           ("/v1/embeddings", '{"input": "x", "instruction": "\\udfff"}'),
                           ("/v1/embeddings", '{"input": [{"image": "\\ud800.png"}]}'),
                           ("/v1/embeddings", '{"input": "x", "model": "\\ud800"}'),
                           ("/search", '{"text": "\\ud800"}')):
        r = c.post(endpoint, content=body.encode(), headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)


# --- 4 --------------------------------------------------------------------------------------------------------
def test_oversized_chunked_body_is_413(hostile):
    c = hostile[0]

    def chunks():
        yield b'{"input": "'
        for _ in range(30):
            yield b"a" * 10_000
        yield b'"}'

    r = c.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers} and r.status_code == 413, r.text
    assert "larger than 200000 bytes" in r.json()["detail"]
    # a chunked body under the limit is served as usual
    r = c.post("/v1/embeddings", content=iter([b'{"input": ', b'"a harbour"}']),
               headers={"content-type": "application/json"})
    assert r.status_code == 200


# --- 5 --------------------------------------------------------------------------------------------------------
def test_decompression_bombs_are_422(hostile):
    c = hostile[0]
    b64 = base64.b64encode(bomb_png()).decode()
    for image in ("data:image/png;base64," + b64, {"base64": b64}, "bomb.png"):
        r = c.post("/v1/embeddings", json={"input": ["ok", {"image": image}]})
        assert r.status_code == 422, r.text
        d = r.json()["detail"][0]
        assert d["item"] == 1 and ("pixels" in d["problem"] or "too large" in d["problem"])
    r = c.post("/search", json={"image": {"base64": b64}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "image"]


def test_request_pixel_budget(served):
    import io

    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    _, _, model = served
    buf = io.BytesIO()
    Image.fromarray(scene(2, 100)).save(buf, "PNG")
    item = {"image": {"base64": base64.b64encode(buf.getvalue()).decode()}}
    app = create_app(None, model, Limits(max_image_pixels=20_000, max_request_pixels=15_000))
    with TestClient(app) as c:
        assert c.post("/v1/embeddings", json={"input": [item, "text"]}).status_code == 200
        r = c.post("/v1/embeddings", json={"input": [item, item]})
        assert r.status_code == 422 and r.json()["detail"][0]["item"] == 1 and "in total" in r.text
