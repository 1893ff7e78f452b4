"""The index's routes: ``POST /search``, chip images (thumbnails and Web Mercator overlays, :mod:`geovec.serve.imagery`),
the chips in a box, the similarity heatmap's boxes, imagery tiles, and what the map page reads (``/map/config``,
``/index/overview``, a local basemap). Without an index they answer 404."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from geovec.inputs import GeoVecInputError
from geovec.serve.errors import input_error
from geovec.serve.heatmap import ChipScores
from geovec.serve.imagery import Basemap, ChipImagery
from geovec.serve.items import Limits, bounded_text, image_of, reading_length, tokenizer_of
from geovec.serve.requests import SearchRequest


def add_index_routes(app: FastAPI, store, model, runner, limits: Limits, basemap: Basemap | None) -> None:
    """The routes over index ``store`` (None: each answers 404 "this server has no index")."""
    text_max, _ = reading_length(model)

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


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")
