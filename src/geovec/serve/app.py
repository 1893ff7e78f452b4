"""The geovec HTTP server (FastAPI): OpenAI-compatible ``POST /v1/embeddings`` and ``/v1/models``
(:mod:`geovec.serve.embeddings`), ``GET /healthz``, the index's search, chip images, tiles and map data
(:mod:`geovec.serve.index_routes`), and the map page at ``/`` (Leaflet, vendored under ``static/vendor/``: no CDN).
Errors have OpenAI's shape (:mod:`geovec.serve.errors`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from geovec.serve.embeddings import ModelRunner, add_model_routes
from geovec.serve.errors import BodySizeLimit, SafeJSONResponse, add_error_handlers
from geovec.serve.imagery import Basemap
from geovec.serve.index_routes import add_index_routes
from geovec.serve.items import Limits

STATIC = Path(__file__).parent / "static"


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

    add_error_handlers(app)
    add_model_routes(app, model, runner, limits)

    @app.get("/healthz")
    async def healthz():
        out = {"status": "ok", "model": model.model_id, "revision": model.revision, "dimension": int(model.embed_dim)}
        if store is not None:
            out.update(await run_in_threadpool(lambda: {"index": str(store.path), "chips": len(store),
                                                        "ann_index": store.has_vector_index()}))
        return out

    add_index_routes(app, store, model, runner, limits, basemap)

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
