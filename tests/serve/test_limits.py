"""Server limits, through the official ``openai`` client against a loopback uvicorn server: a text longer than
the model reads is a 400 in OpenAI's shape (or cut with ``"truncate": true``), decided before the whole text is
tokenised; the request body has a byte limit; and a slow request does not hold up the others."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.index.geovec_fake_model import FakeGeoModel
from tests.serve.test_web_e2e import _serving

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")


class WordTokenizer:
    """A stand-in tokenizer (one token per word) that records how many characters it was given."""

    def __init__(self):
        self.seen: list[int] = []

    def __call__(self, texts, add_special_tokens=False, verbose=True):  # like Hugging Face's: a string -> one list
        if isinstance(texts, str):
            self.seen.append(len(texts))
            return {"input_ids": list(range(len(texts.split())))}
        self.seen.extend(len(t) for t in texts)
        return {"input_ids": [list(range(len(t.split()))) for t in texts]}


class CountingModel(FakeGeoModel):
    def __init__(self, seconds_per_item: float = 0.0):
        super().__init__()
        self.tokenizer = WordTokenizer()
        self.seconds_per_item = seconds_per_item

    def embed_prepared(self, prepared):
        time.sleep(self.seconds_per_item * len(prepared))
        return super().embed_prepared(prepared)


@pytest.fixture(scope="module")
def fake():
    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    model = CountingModel()
    with _serving(create_app(None, model, Limits(max_request_bytes=2_000_000, max_items=64))) as url:
        yield url, model


@pytest.fixture()
def oai(fake):
    return openai.OpenAI(base_url=fake[0] + "/v1", api_key="-", max_retries=0, timeout=30)


def test_reading_length_is_the_models():
    from geovec.serve.items import reading_length

    m = CountingModel()
    assert reading_length(m) == (m.config.max_text_tokens, m.config.max_instruction_tokens) == (96, 32)
    m.settings = {"max_text_tokens": 256}  # a dual-path model's global text path reads more than its encoder
    assert reading_length(m) == (256, 32)


def test_over_long_text_is_a_400_in_openais_shape(oai, fake):
    _, model = fake
    ok = oai.embeddings.create(input=" ".join(["field"] * 96), model="fake-geo", encoding_format="float")
    assert ok.usage.prompt_tokens == 96
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(input=["short", " ".join(["field"] * 97)], model="fake-geo")
    err = e.value
    assert err.status_code == 400 and err.code == "context_length_exceeded" and err.param == "input"
    assert "item 1" in err.message and "97 tokens" in err.message and "96" in err.message
    assert err.body["type"] == "invalid_request_error"
    # a request-level instruction has its own reading length (32 tokens)
    r = httpx.post(fake[0] + "/v1/embeddings", json={"input": "x", "instruction": " ".join(["find"] * 33)})
    assert r.status_code == 400 and r.json()["error"]["param"] == "instruction"


def test_a_huge_text_is_refused_without_tokenising_it(oai, fake):
    _, model = fake
    model.tokenizer.seen.clear()
    huge = "forest " * 250_000  # 1.75 MB of text, 250,000 words
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(input=huge, model="fake-geo")
    assert e.value.code == "context_length_exceeded" and "1750000 characters" in e.value.message
    assert model.tokenizer.seen == []  # refused on its length alone
    # with truncate the model reads the text's beginning: at most 96 x 16 characters are ever tokenised
    got = oai.embeddings.create(input=huge, model="fake-geo", encoding_format="float", extra_body={"truncate": True})
    assert max(model.tokenizer.seen) <= 96 * 16
    assert got.usage.prompt_tokens == 96
    head = model.encode([huge[: 96 * 16]])[0]
    assert np.allclose(got.data[0].embedding, head, atol=1e-6)
    # a text of many tokens but few characters is counted and cut the same way
    many = " ".join(["a"] * 500)
    got = oai.embeddings.create(input=many, model="fake-geo", extra_body={"truncate": True})
    assert got.usage.prompt_tokens == 96


def test_request_body_has_a_byte_limit(oai):
    with pytest.raises(openai.APIStatusError) as e:
        oai.embeddings.create(input=["x" * 1000] * 2100, model="fake-geo")
    assert e.value.status_code == 413 and e.value.code == "request_too_large"


def test_a_slow_request_does_not_hold_up_the_others():
    """A 48-item request on a model that takes 50 ms an item (2.4 s); a one-item embedding and /healthz sent
    while it runs both finish before it: the forwards run off the event loop, in turns of 16 items."""
    from geovec.serve.app import create_app

    model = CountingModel(seconds_per_item=0.05)
    with _serving(create_app(None, model)) as url:
        done: dict[str, float] = {}
        results: dict[str, object] = {}

        def call(name, fn):
            results[name] = fn()
            done[name] = time.perf_counter()

        client = openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0, timeout=60)
        big = threading.Thread(target=call, args=("big", lambda: client.embeddings.create(
            input=[f"scene {i}" for i in range(48)], model="fake-geo", encoding_format="float")))
        big.start()
        deadline = time.time() + 10
        while model.items_embedded == 0 and time.time() < deadline:  # the big request is being embedded
            time.sleep(0.005)
        assert model.items_embedded > 0
        small = threading.Thread(target=call, args=("small", lambda: client.embeddings.create(
            input="harbour", model="fake-geo", encoding_format="float")))
        health = threading.Thread(target=call, args=("health", lambda: httpx.get(url + "/healthz", timeout=30)))
        small.start()
        health.start()
        for t in (big, small, health):
            t.join(60)
        assert done["health"] < done["small"] < done["big"], done
        assert results["health"].status_code == 200
        assert len(results["big"].data) == 48 and len(results["small"].data) == 1
        # the big request's vectors are what one call gives: chunking changes nothing
        want = model.encode([f"scene {i}" for i in range(48)])
        assert np.allclose(np.array([d.embedding for d in results["big"].data]), want, atol=1e-6)


def test_search_text_over_the_reading_length(client):
    r = client.post("/search", json={"text": "dune " * 2000, "k": 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "text"
    assert r.json()["error"]["code"] == "context_length_exceeded"
