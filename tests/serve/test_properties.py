"""Property-based tests (hypothesis) of the server's item schema: arbitrary JSON items and request fields
(NaN / Infinity / huge numbers, strings, paths, byte blobs as images) give an embedding per item or a 4xx
naming the item or field, never a 500."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from geovec.inputs import ALLOWED_KEYS
from tests.conftest import scene
from tests.hostile import bomb_png, write_tiff, write_vrt_as_tif

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NUMBERS = (st.integers(min_value=-(10**20), max_value=10**20) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -1, 90, 180, 10**300]))
TEXT = st.text(max_size=30) | st.sampled_from(["", " ", "\ud800", "a\x00b", "../" * 8 + "etc/passwd", "good.png"])
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=10)


def _png(px) -> str:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


GOOD_B64 = _png(scene(5, 24))
BLOBS = st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"<VRTDataset>", b"GIF89a",
                         base64.b64decode(GOOD_B64)[:60], bomb_png(), bomb_png(300, 300)])
B64 = st.builds(lambda m, t: base64.b64encode(m + t).decode(), BLOBS, st.binary(max_size=80))
IMAGES = (st.sampled_from(["good.png", "evil.tif", "bomb.png", "missing.png", "../outside/secret.tif", "/etc/passwd",
                           "/", ".", "", "data:image/png;base64," + GOOD_B64, "data:text/plain,hi",
                           "https://example.com/a.png", "/vsicurl/http://x/a.tif"])
          | B64.map(lambda b: "data:image/png;base64," + b) | B64.map(lambda b: {"base64": b})
          | TEXT.map(lambda p: {"path": p}) | st.just({"url": "http://x"}) | JSON)
ITEM_VALUES = JSON | IMAGES
ITEMS = (TEXT | JSON
         | st.dictionaries(st.sampled_from(ALLOWED_KEYS + ("colour",)), ITEM_VALUES, max_size=5)
         | st.fixed_dictionaries({"image": IMAGES}, optional={
             "box": st.lists(NUMBERS, min_size=4, max_size=4) | JSON, "text": TEXT, "lat": NUMBERS, "lon": NUMBERS,
             "instruction": TEXT}))


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    db, _, model = served
    base = tmp_path_factory.mktemp("prop")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    write_vrt_as_tif(root / "evil.tif", write_tiff(outside / "secret.tif", np.full((1, 8, 8), 5, np.uint8)))
    (root / "bomb.png").write_bytes(bomb_png())
    Image.fromarray(scene(6, 32)).save(root / "good.png")
    app = create_app(db, model, Limits(roots=[root], max_request_bytes=500_000, max_image_pixels=200 * 200,
                                       max_items=8))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post(client, path, body):
    # allow_nan=True: NaN / Infinity go on the wire as the bare tokens a hostile client would send
    data = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    return client.post(path, content=data, headers={"content-type": "application/json"})


@SETTINGS
@given(items=st.lists(ITEMS, min_size=1, max_size=4), extra=st.dictionaries(
    st.sampled_from(["dimensions", "encoding_format", "task", "side", "instruction", "normalize", "model"]), JSON,
    max_size=2))
def test_embeddings_answer_is_200_or_4xx_naming_the_item(client, items, extra):
    r = post(client, "/v1/embeddings", {"input": items, **extra})
    assert r.status_code < 500, (r.status_code, r.text, items, extra)
    body = r.json()
    if r.status_code == 200:
        assert len(body["data"]) == len(items)
        assert all(np.isfinite(d["embedding"]).all() for d in body["data"] if isinstance(d["embedding"], list))
    elif r.status_code == 422 and isinstance(body["detail"], list):
        for d in body["detail"]:
            if d.get("item") is not None:
                assert 0 <= d["item"] < len(items) and d["msg"].startswith(f"item {d['item']}")
            else:
                assert d.get("loc"), d
    else:
        assert r.status_code in (400, 404, 413, 422) and body["detail"] and body["error"]["message"]


@SETTINGS
@given(body=st.dictionaries(st.sampled_from(["text", "image", "box", "near", "within_km", "bbox", "k", "instruction",
                                              "exact"]), ITEM_VALUES | st.fixed_dictionaries({"lat": NUMBERS,
                                                                                            "lon": NUMBERS}),
                            max_size=5))
def test_search_answer_is_200_or_4xx(client, body):
    r = post(client, "/search", body)
    assert r.status_code < 500, (r.status_code, r.text, body)
    if r.status_code == 200:
        assert r.json()["type"] == "FeatureCollection"
    else:
        assert r.status_code == 422 and r.json()["detail"]


@SETTINGS
@given(raw=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass")))
def test_any_body_bytes(client, raw):
    for path in ("/v1/embeddings", "/search"):
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code < 500, (path, r.status_code, r.text, raw)
