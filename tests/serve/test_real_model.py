import base64
import io

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_embeddings_endpoint_with_the_model(model):
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app

    px = np.random.default_rng(0).integers(0, 255, (96, 128, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    with TestClient(create_app(None, model)) as c:
        assert c.get("/healthz").json()["model"] == model.model_id
        r = c.post("/v1/embeddings", json={"input": ["an airport", {"image": data_url, "box": [10, 10, 60, 50]},
                                                     {"lat": 52.1, "lon": 5.2, "text": "dunes"}], "task": "retrieval"})
        assert r.status_code == 200, r.text
        got = np.array([d["embedding"] for d in r.json()["data"]], np.float32)
        ref = model.encode(["an airport", {"image": px, "box": [10, 10, 60, 50]},
                                 {"lat": 52.1, "lon": 5.2, "text": "dunes"}], task="retrieval")
        assert got.shape == (3, model.embed_dim) and np.allclose(got, ref, atol=1e-4)
        assert c.post("/search", json={"text": "x"}).status_code == 404  # no index: embeddings only
