"""Error responses in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}`` (OpenAI clients raise
them with the message), with FastAPI's ``detail`` beside it (per-item ``loc`` / ``problem``) for clients that read
it; JSON that always renders; the request body size limit (413)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geovec.inputs import GeoVecInputError
from geovec.serve.items import InputTooLong


def json_safe(value: Any, depth: int = 0) -> Any:
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
        return {str(json_safe(k, depth + 1)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return json_safe(str(value), depth + 1)


class SafeJSONResponse(JSONResponse):
    """JSON that always renders: a message echoing a client's NaN or lone surrogate never becomes a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, TypeError, UnicodeEncodeError):
            return super().render(json_safe(content))


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
    return openai_error(422, f"{first['field']}: {first['msg']}{more}", param=first["field"], detail=json_safe(detail))


def add_error_handlers(app: FastAPI) -> None:
    """Every error of ``app`` in OpenAI's shape: bad items, over-long inputs, invalid requests, HTTP errors."""

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
