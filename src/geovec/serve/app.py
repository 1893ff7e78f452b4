"""The geovec HTTP server (FastAPI): OpenAI-compatible ``POST /v1/embeddings`` (extended with multimodal items),
``GET /v1/models`` and ``/v1/models/{id}``, ``POST /search`` over an index, ``GET /healthz``, chip images (thumbnails
and Web Mercator overlays, :mod:`geovec.serve.imagery`), the chips in a box, and the map page at ``/`` (Leaflet,
vendored under ``static/vendor/``: no CDN).

Errors have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients raise them
with the message; the same body keeps ``detail`` (FastAPI's field, with per-item ``loc`` / ``problem``) for
clients that read it."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Literal, Optional

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from geovec.inputs import GeoVecInputError
from geovec.serve.heatmap import ChipScores
from geovec.serve.imagery import Basemap, ChipImagery
from geovec.serve.items import (InputTooLong, Limits, PixelBudget, bound_items, bounded_text, image_of,
                                reading_length, to_item, tokenizer_of)

STATIC = Path(__file__).parent / "static"


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` made serialisable as strict JSON: non-finite floats as strings, lone surrogates escaped."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (bool, int)) or value is None:
        return value
    if depth > 20:
        return "..."
    if isinstance(value, dict):
        return {str(_json_safe(k, depth + 1)): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    return _json_safe(str(value), depth + 1)


class SafeJSONResponse(JSONResponse):
    """JSON that always renders: a message echoing a client's NaN or lone surrogate never becomes a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, TypeError, UnicodeEncodeError):
            return super().render(_json_safe(content))


def _strict_str(value: Optional[str]) -> Optional[str]:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (it holds a lone surrogate)") from None
    return value


class _Strict(BaseModel):
    # NaN / Infinity / 1e309 in a number field are a 422 naming the field, never a 500
    model_config = ConfigDict(allow_inf_nan=False)


class EmbeddingRequest(_Strict):
    """OpenAI's embeddings request, plus geovec's ``instruction`` / ``task`` / ``side`` extensions."""

    input: Any
    model: Optional[str] = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = None
    user: Optional[str] = None
    instruction: Optional[str] = None
    task: Optional[Literal["classification", "retrieval", "composed", "vqa", "region", "referring", "geo"]] = None
    side: Literal["query", "document"] = "query"
    normalize: bool = True
    truncate: bool = False  # embed the first tokens of a text longer than the model reads, instead of a 400

    _check_strings = field_validator("model", "user", "instruction")(_strict_str)


class Near(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SearchRequest(_Strict):
    text: Optional[str] = None
    image: Any = None
    box: Optional[list[float]] = Field(None, min_length=4, max_length=4)
    near: Optional[Near] = None
    within_km: Optional[float] = Field(None, gt=0)
    bbox: Optional[list[float]] = Field(None, min_length=4, max_length=4)
    k: int = Field(10, ge=1)
    instruction: Optional[str] = None
    exact: bool = False
    like: Optional[str] = Field(None, min_length=1, max_length=8192)  # a chip id: search with its stored vector
    heatmap: bool = False  # also every chip's score, quantised (the map's similarity layer)

    _check_strings = field_validator("text", "instruction", "like")(_strict_str)


class BodySizeLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes``, declared (``Content-Length``) or streamed
    (chunked). The body is read here, up to the limit, and replayed to the app, so an oversized chunked body
    is a 413 too (not the framework's 400 "error parsing the body")."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    return await self._reject(send)
            except ValueError:
                pass  # the server rejects a malformed length itself
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing to answer
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                return await self._reject(send)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the app expects

        await self.app(scope, replay, send)

    async def _reject(self, send):
        message = f"request body larger than {self.max_bytes} bytes"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                     "code": "request_too_large"}, "detail": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               422: "invalid_value", 429: "rate_limited"}


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None,
                 detail: Any = None, headers: dict | None = None) -> JSONResponse:
    """An error response in OpenAI's shape (``error.message`` / ``type`` / ``param`` / ``code``), with FastAPI's
    ``detail`` beside it (``detail`` defaults to the message)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or ERROR_CODES.get(status)},
            "detail": message if detail is None else detail}
    return SafeJSONResponse(status_code=status, content=body, headers=headers)


def input_error(e: GeoVecInputError, field_name: str = "input") -> JSONResponse:
    loc = ["body", field_name] + ([e.index] if e.index is not None else [])
    detail = [{"loc": loc, "msg": str(e), "type": "value_error", "item": e.index, "problem": e.problem}]
    return openai_error(422, str(e), param=field_name, code="invalid_input", detail=detail)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, with each error naming its field (``field``) and the offending value echoed only
    when it is a short scalar (never NaN / Infinity as a bare number, never a whole request body)."""
    detail = []
    for err in exc.errors():
        loc = [x if isinstance(x, (int, str)) else str(x) for x in err.get("loc", ())]
        d = {"loc": loc, "field": ".".join(str(x) for x in loc[1:]) or "body", "msg": str(err.get("msg", "")),
             "type": str(err.get("type", "value_error"))}
        value = err.get("input")
        if isinstance(value, (bool, int, float, type(None))) or (isinstance(value, str) and len(value) <= 200):
            if not (isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**18):
                d["input"] = value
        detail.append(d)
    first = detail[0] if detail else {"field": "body", "msg": "invalid request"}
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return openai_error(422, f"{first['field']}: {first['msg']}{more}", param=first["field"], detail=_json_safe(detail))


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


def create_app(db: str | Path | None = None, model=None, limits: Limits | None = None,
               cors_origins: list[str] | None = None, basemap: Basemap | str | None = None) -> FastAPI:
    """The app for index ``db`` (optional: without it only ``/v1/embeddings``, ``/v1/models`` and ``/healthz``
    work). ``model`` defaults to the index's model (or ``geovec.load_model()``). ``cors_origins``: browser origins
    allowed to call the API (CORS; none by default). ``basemap``: an XYZ tile template for the map page
    (:class:`geovec.serve.imagery.Basemap`; none by default)."""
    if isinstance(basemap, str):
        basemap = Basemap(basemap)
    limits = limits or Limits()
    store = None
    if db is not None:
        from geovec.index.store import ChipStore

        store = ChipStore(db)
    if model is None:
        import geovec

        model = geovec.load_model(store.info.model_id if store else None)
    if store is not None:
        from geovec.index.search import check_model

        check_model(store, model)
    runner = ModelRunner(model)

    app = FastAPI(title="geovec", version="0.1.0", default_response_class=SafeJSONResponse,
                  description="Interleaved remote-sensing embeddings (image, text, boxes, lat/lon) and search.")
    app.state.model, app.state.store, app.state.limits, app.state.runner = model, store, limits, runner
    app.router.on_shutdown.append(lambda: runner.pool.shutdown(wait=False, cancel_futures=True))

    @app.exception_handler(GeoVecInputError)
    async def _input_error(request: Request, e: GeoVecInputError):
        return input_error(e)

    @app.exception_handler(InputTooLong)
    async def _too_long(request: Request, e: InputTooLong):  # OpenAI's answer to an over-long input
        # an item of ``input`` is named in the message; a request field (``instruction``, ``text``) is the param
        return openai_error(400, str(e) if e.index is not None else e.problem, param=e.param,
                            code="context_length_exceeded")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        return validation_error(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        param, code, message = None, None, e.detail
        if isinstance(e.detail, dict):  # raised as HTTPException(status, {"message", "param", "code"})
            param, code, message = e.detail.get("param"), e.detail.get("code"), e.detail.get("message")
        return openai_error(e.status_code, str(message), param=param, code=code, headers=e.headers)

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

    @app.get("/healthz")
    async def healthz():
        out = {"status": "ok", "model": model.model_id, "revision": model.revision, "dimension": int(model.embed_dim)}
        if store is not None:
            out.update(await run_in_threadpool(lambda: {"index": str(store.path), "chips": len(store),
                                                        "ann_index": store.has_vector_index()}))
        return out

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

    def _store():
        if store is None:
            raise HTTPException(404, "this server has no index (start it with --db DIR)")
        return store

    scores = ChipScores(store) if store is not None else None
    app.state.scores = scores

    @app.get("/heatmap/boxes.bin")
    async def heatmap_boxes(request: Request):
        """The georeferenced chips' bboxes for the heatmap, little-endian float32 ``(min_lon, min_lat, max_lon,
        max_lat)`` per chip, in the order of a search's ``heatmap.scores``; the ``ETag`` is that order's version."""
        _store()
        body, version = await run_in_threadpool(scores.boxes_bytes)
        headers = {"ETag": f'"{version}"', "X-Heatmap-Version": version, "Cache-Control": "no-cache"}
        if f'"{version}"' in (request.headers.get("if-none-match") or ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/octet-stream", headers=headers)

    @app.post("/search")
    async def search(req: SearchRequest):
        """One query (text / image / box / place, or ``like``: an indexed chip id, whose stored vector is used)
        -> GeoJSON FeatureCollection. An image alone (or image + box) is embedded like the chips. ``heatmap``:
        every chip's score too (:class:`geovec.serve.heatmap.ChipScores`)."""
        from geovec.index.search import SearchQuery, embed_query
        from geovec.index.store import ChipNotFoundError

        s = _store()
        if req.k > limits.max_k:
            raise HTTPException(422, f"k={req.k} is above this server's limit of {limits.max_k}")
        if req.text:
            bounded_text(req.text, text_max, tokenizer_of(model), limits, False, "text")
        image = None
        if req.image is not None:
            try:
                image = await run_in_threadpool(image_of, req.image, limits)
            except GeoVecInputError as e:
                return input_error(GeoVecInputError(e.problem), "image")
        q = SearchQuery(text=req.text, image=image, box=req.box, near=(req.near.lat, req.near.lon) if req.near else None,
                        within_km=req.within_km, bbox=tuple(req.bbox) if req.bbox else None, k=req.k,
                        instruction=req.instruction, exact=req.exact, like=req.like)
        try:
            q.validate()
            if q.like is not None:
                vec = await run_in_threadpool(s.vector, q.like)
            else:
                vec = await runner.call(embed_query, model, q, s.info)
        except ChipNotFoundError as e:
            raise HTTPException(404, {"message": str(e), "param": "like", "code": "chip_not_found"}) from None
        except GeoVecInputError as e:
            return input_error(GeoVecInputError(e.problem), "query")
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return await run_in_threadpool(_answer, s, vec, q, req.heatmap)

    def _answer(s, vec: np.ndarray, q, heatmap: bool) -> dict:
        from geovec.index.search import hits_to_geojson, search_vector, swapped_near_warning

        out = hits_to_geojson(search_vector(s, vec, q), q)
        for f in out["features"]:
            u = "/chips/" + _quote(f["id"])
            f["properties"]["thumbnail"] = u + "/thumbnail.png"
            f["properties"]["overlay"] = u + "/overlay.png" if f["geometry"] else None
        out["task"], out["side"] = q.task, q.side
        if q.near is not None:
            warning = swapped_near_warning(s, q.near)
            if warning:
                out["warnings"] = [warning]
        if heatmap:
            out["heatmap"] = scores.heatmap(vec)
        return out

    imagery = ChipImagery(store) if store is not None else None
    app.state.imagery = imagery

    def _image_response(request: Request, kind: str, chip_id: str, size: int) -> Response:
        from geovec.serve.imagery import ChipMissing, NotGeoreferenced

        _store()
        try:
            png, etag = imagery.thumbnail(chip_id, size) if kind == "thumbnail" else imagery.overlay(chip_id, size)
        except ChipMissing:
            raise HTTPException(404, {"message": f"no chip with id {chip_id!r} in the index", "param": "id",
                                      "code": "chip_not_found"}) from None
        except NotGeoreferenced:
            raise HTTPException(404, {"message": f"chip {chip_id!r} has no georeference: it has a thumbnail but no "
                                                 "map overlay", "param": "id", "code": "not_georeferenced"}) from None
        except GeoVecInputError as e:
            raise HTTPException(410, f"chip file is no longer readable: {e.problem}") from None
        headers = {"Cache-Control": "max-age=3600", "ETag": etag}
        if etag in (request.headers.get("if-none-match") or ""):
            return Response(status_code=304, headers=headers)
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/chips/{chip_id:path}/thumbnail.png")
    def chip_thumbnail(request: Request, chip_id: str, size: int = Query(128, ge=16, le=512)):
        """PNG of a chip's pixels (the index's bands and scaling), fitted into ``size`` px; cached."""
        return _image_response(request, "thumbnail", chip_id, size)

    @app.get("/chips/{chip_id:path}/overlay.png")
    def chip_overlay(request: Request, chip_id: str, size: int = Query(256, ge=16, le=1024)):
        """RGBA PNG of a chip reprojected to Web Mercator over its lon/lat bbox (a web map's image overlay with
        bounds ``[[min_lat, min_lon], [max_lat, max_lon]]``), transparent outside the footprint; cached."""
        return _image_response(request, "overlay", chip_id, size)

    @app.get("/thumbnail")
    def thumbnail(request: Request, id: str = Query(..., description="chip id from a search result"),
                  size: int = Query(128, ge=16, le=512)):
        """The same as ``/chips/{id}/thumbnail.png``."""
        return _image_response(request, "thumbnail", id, size)

    @app.get("/chips")
    def chips_in(bbox: str = Query(..., description="min_lon,min_lat,max_lon,max_lat"),
                 limit: int = Query(200, ge=1, le=2000)):
        """The chips whose footprint intersects ``bbox``, for the map's imagery layer: ``total`` and, when
        ``total <= limit``, each chip's id, bbox and image URLs (else ``chips`` is empty: too many to draw)."""
        from geovec.index.search import SearchQuery, prefilter_sql

        s = _store()
        try:
            box = [float(v) for v in bbox.split(",")]
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise ValueError
            x1, y1, x2, y2 = box
            if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
                raise ValueError
        except ValueError:
            raise HTTPException(422, {"message": f"bbox must be min_lon,min_lat,max_lon,max_lat in degrees, got "
                                                 f"{bbox!r}", "param": "bbox"}) from None
        where = prefilter_sql(SearchQuery(bbox=tuple(box)))
        total = s.table.count_rows(where)  # counted first: a wide view of a big index reads no rows
        out = []
        if total <= limit:
            for r in s.column("id", "min_lon", "min_lat", "max_lon", "max_lat", where=where).to_pylist():
                u = "/chips/" + _quote(r["id"])
                out.append({"id": r["id"], "bbox": [r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"]],
                            "thumbnail": u + "/thumbnail.png", "overlay": u + "/overlay.png"})
        return {"total": total, "limit": limit, "chips": out}

    tiler = None
    if store is not None:
        from geovec.serve.tiles import Tiler

        tiler = Tiler(store)

        def _warm():  # previews of large rasters, written once, so that zoomed-out tiles are quick from the start
            try:
                tiler.warm()
            except Exception:  # an index folder that cannot be read now: tiles are then rendered as asked
                pass

        app.router.on_startup.append(lambda: threading.Thread(target=_warm, name="geovec-previews", daemon=True).start())
    app.state.tiler, app.state.tile_limiter = tiler, None

    @app.get("/tiles/{z}/{x}/{y}.png")
    async def imagery_tile(z: int, x: int, y: int):
        """XYZ tile (Web Mercator, 256 px, RGBA PNG) of the indexed rasters' own imagery, with the index's bands
        and scaling, at any zoom (:mod:`geovec.serve.tiles`); transparent where no indexed raster lies."""
        _store()
        if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
            raise HTTPException(404, {"message": f"no tile {z}/{x}/{y}", "param": "tile", "code": "no_such_tile"})
        if app.state.tile_limiter is None:  # made here: it belongs to the running event loop
            app.state.tile_limiter = anyio.CapacityLimiter(4)
        # tiles take turns among themselves (a zoomed-out view asks for dozens, and a preview being written
        # makes them wait), so they never take all the worker threads that searches and embeddings need
        png = await anyio.to_thread.run_sync(tiler.tile, z, x, y, limiter=app.state.tile_limiter)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=300"})

    @app.get("/map/config")
    def map_config():
        """What the map page needs besides the index: the basemap (``null``: none) and the server's limits."""
        return {"basemap": basemap.browser_config() if basemap else None, "index": store is not None,
                "max_k": limits.max_k}

    if basemap is not None and not basemap.remote:
        @app.get("/basemap/{z}/{x}/{y}", include_in_schema=False)
        def basemap_tile(z: int, x: int, y: str):
            stem = y.split(".", 1)[0]
            tile = basemap.local_file(z, x, int(stem)) if stem.isdigit() else None
            if tile is None:
                raise HTTPException(404, "no such tile")
            kind = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                    ".webp": "image/webp"}.get(tile.suffix.lower(), "application/octet-stream")
            return FileResponse(tile, media_type=kind, headers={"Cache-Control": "max-age=86400"})

    @app.get("/index/overview")
    def overview(limit: int = Query(20000, ge=1, le=200000)):
        """Extent and chip bboxes (min_lon, min_lat, max_lon, max_lat) for the map's background layer; a bbox or
        the extent with min_lon > max_lon crosses 180 degrees (RFC 7946)."""
        from geovec.inputs.footprint import lon_extent

        s = _store()
        t = s.column("min_lon", "min_lat", "max_lon", "max_lat", where="min_lon IS NOT NULL")
        boxes = np.stack([t[c].to_numpy(zero_copy_only=False) for c in t.column_names], 1) if t.num_rows else np.zeros((0, 4))
        if len(boxes):
            west, east = lon_extent(boxes[:, 0], boxes[:, 2])
            extent = [west, float(boxes[:, 1].min()), east, float(boxes[:, 3].max())]
        else:
            extent = None
        step = max(1, int(np.ceil(len(boxes) / limit)))
        return {"chips": len(s), "placed": int(len(boxes)), "extent": extent, "model": model.model_id,
                "info": asdict(s.info), "boxes": np.round(boxes[::step], 6).tolist()}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_request_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["*"], max_age=600)
    return app


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")
