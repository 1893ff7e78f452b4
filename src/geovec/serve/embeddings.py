"""OpenAI-compatible model routes: ``POST /v1/embeddings`` (extended with multimodal items), ``GET /v1/models`` and
``/v1/models/{id}``; the model runs on one worker thread (:class:`ModelRunner`)."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool

from geovec.serve.items import Limits, PixelBudget, bound_items, bounded_text, reading_length, to_item, tokenizer_of
from geovec.serve.requests import EmbeddingRequest


def _created(model) -> int:
    """``created`` of ``/v1/models``: the revision's date (``r7-2026-12-01``) as a Unix time, else 0."""
    import datetime as dt
    import re

    m = re.search(r"(\d{4})-(\d{2})-(\d{2})", str(getattr(model, "revision", "")))
    if not m:
        return 0
    return int(dt.datetime(*map(int, m.groups()), tzinfo=dt.timezone.utc).timestamp())


class ModelRunner:
    """The model's forwards, one at a time on one worker thread (the model's own thread pool already uses the
    cores), off the event loop. A request's items go in chunks of ``chunk``, each queued behind whatever is
    waiting (FIFO), so concurrent requests take turns: a small request waits for at most one chunk of a big
    one, and endpoints that need no model (``/healthz``, ``/v1/models``, map tiles) never wait for it."""

    def __init__(self, model, chunk: int = 16):
        self.model, self.chunk = model, chunk
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="geovec-model")

    async def call(self, fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))

    async def encode(self, items: list, **kwargs) -> np.ndarray:
        parts = [await self.call(self.model.encode, items[s : s + self.chunk], **kwargs)
                 for s in range(0, len(items), self.chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, int(self.model.embed_dim)), np.float32)


def count_tokens(model, items, max_tokens: int | None = None) -> int:
    """``usage.prompt_tokens``: the model tokenizer's count of the text parts of the items (no special tokens;
    images, boxes and places are not text and not counted), each at most ``max_tokens`` (what the model reads
    of a truncated text). A model without a tokenizer counts words."""
    texts = [it.text for it in items if it.text]
    if not texts:
        return 0
    tok = tokenizer_of(model)
    counts = ([len(t.split()) for t in texts] if tok is None
              else [len(ids) for ids in tok(texts, add_special_tokens=False, verbose=False)["input_ids"]])
    return int(sum(min(n, max_tokens) if max_tokens else n for n in counts))


def _is_token_input(raw: Any) -> bool:
    """OpenAI's token-id inputs: one array of ints, or an array of such arrays."""
    def ints(x):
        return isinstance(x, list) and bool(x) and all(isinstance(t, int) and not isinstance(t, bool) for t in x)

    return ints(raw) or (isinstance(raw, list) and bool(raw) and all(ints(x) for x in raw))


def add_model_routes(app: FastAPI, model, runner: ModelRunner, limits: Limits) -> None:
    """``/v1/models``, ``/v1/models/{id}`` and ``/v1/embeddings`` of ``model``."""
    names = {model.model_id, f"geovec/{model.model_id}", "geovec"}

    def model_card() -> dict:
        return {"id": model.model_id, "object": "model", "created": _created(model), "owned_by": "geovec",
                "revision": model.revision, "dimension": int(model.embed_dim)}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str):
        if model_id not in names:
            raise HTTPException(404, {"message": f"model {model_id!r} is not served here; this server serves "
                                                 f"{model.model_id!r}", "param": "model", "code": "model_not_found"})
        return model_card()

    text_max, instruction_max = reading_length(model)

    @app.post("/v1/embeddings")
    async def embeddings(req: EmbeddingRequest):
        if req.model not in (None, "") and req.model not in names:
            raise HTTPException(404, {"message": f"model {req.model!r} is not served here; this server serves "
                                                 f"{model.model_id!r}", "param": "model", "code": "model_not_found"})
        if req.dimensions is not None and req.dimensions != model.embed_dim:
            raise HTTPException(422, {"message": f"dimensions={req.dimensions} not supported: this model gives "
                                                 f"{model.embed_dim} (its embeddings are not truncatable)",
                                      "param": "dimensions", "code": "unsupported_dimensions"})
        raw = req.input
        if _is_token_input(raw):
            raise HTTPException(400, {"message": "token-id arrays are not supported: geovec's tokenizer is not the "
                                                 "one the ids come from; send the text (or geovec items) instead",
                                      "param": "input", "code": "unsupported_input"})
        if isinstance(raw, (str, dict)):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise HTTPException(422, {"message": "input must be a string, an item object, or a non-empty list of "
                                                 "them", "param": "input"})
        if len(raw) > limits.max_items:
            raise HTTPException(413, {"message": f"{len(raw)} items in one request; this server takes at most "
                                                 f"{limits.max_items}", "param": "input"})
        instruction = req.instruction
        if instruction:
            instruction = bounded_text(instruction, instruction_max, tokenizer_of(model), limits, req.truncate,
                                       "instruction")

        def parse():  # decoding images and counting tokens: a worker thread, not the event loop
            budget = PixelBudget(limits)
            return bound_items([to_item(r, i, limits, budget) for i, r in enumerate(raw)], model, limits,
                               req.truncate)

        items = await run_in_threadpool(parse)
        vectors = await runner.encode(items, instruction=instruction, task=req.task, side=req.side,
                                      normalize=req.normalize, show_progress_bar=False)
        data = []
        for i, v in enumerate(vectors):
            emb = (base64.b64encode(np.asarray(v, "<f4").tobytes()).decode() if req.encoding_format == "base64"
                   else [float(x) for x in v])
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = await run_in_threadpool(count_tokens, model, items, text_max)
        return {"object": "list", "data": data, "model": model.model_id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
