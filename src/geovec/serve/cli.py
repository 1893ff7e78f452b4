"""``geovec serve``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def serve_cmd(
    db: Optional[Path] = typer.Option(None, "--db", help="Index directory to search (omit for embeddings only)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name or checkpoint dir (default: the index's)."),
    root: List[Path] = typer.Option([], "--root", exists=True, file_okay=False,
                                    help="Folder whose files requests may name as {\"image\": PATH} (repeatable). "
                                         "Without it no request reads a file; a bare string is always text."),
    max_request_mb: float = typer.Option(16.0, "--max-request-mb", min=0.001,
                                         help="Largest request body, MiB (413 above, chunked or not)."),
    max_image_mp: float = typer.Option(22.0, "--max-image-mp", min=0.001,
                                       help="Largest image per item, megapixels (422 above, checked before decoding)."),
    max_request_mp: Optional[float] = typer.Option(None, "--max-request-mp", min=0.001,
                                                   help="Largest total of decoded images in one request, megapixels "
                                                        "(default 4 x --max-image-mp)."),
    max_items: int = typer.Option(256, "--max-items", min=1, help="Most items per /v1/embeddings request."),
    cors: List[str] = typer.Option([], "--cors", metavar="ORIGIN",
                                   help="Browser origin allowed to call the API (CORS), e.g. http://localhost:3000 "
                                        "(repeatable; '*' allows any). Default: none."),
    basemap: Optional[str] = typer.Option(None, "--basemap", metavar="URL_TEMPLATE",
                                          help="XYZ tiles under the map page's imagery, e.g. "
                                               "http://localhost:8080/{z}/{x}/{y}.png (fetched by the browser) or a "
                                               "local folder template /data/tiles/{z}/{x}/{y}.png (served by geovec "
                                               "at /basemap/..., offline). Default: the bundled Natural Earth "
                                               "coastlines and borders only."),
    basemap_attribution: Optional[str] = typer.Option(None, "--basemap-attribution", metavar="TEXT",
                                                      help="Attribution shown for the --basemap tiles."),
    basemap_max_zoom: Optional[int] = typer.Option(None, "--basemap-max-zoom", min=0, max=30,
                                                   help="Highest zoom the --basemap has tiles for (closer zooms "
                                                        "enlarge those)."),
):
    """Serve /v1/embeddings and /v1/models (OpenAI-compatible; items may be multimodal), /search, /healthz and
    the map page at / (the indexed imagery as map tiles at every zoom over Natural Earth coastlines and borders,
    a similarity heatmap, shareable links; offline; --basemap adds XYZ tiles you have). Errors are OpenAI-shaped
    ({"error": {"message", "type", "param", "code"}}); a text longer than the model reads is a 400
    (context_length_exceeded) unless the request sets "truncate": true.

    Files are opened only under --root and only with GTiff / PNG / JPEG / WebP / BMP content (a .tif that is a
    GDAL VRT is refused). Bad input is a 4xx naming the item and field, never a 500.
    """
    if db is not None:
        from geovec.index.cli import open_index

        open_index(db)  # a missing or wrong --db: one line, exit 2, before anything starts
    import uvicorn

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    from geovec.serve.imagery import Basemap

    try:
        bm = Basemap(basemap, basemap_attribution, basemap_max_zoom) if basemap else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--basemap") from None
    m = None
    if model:
        import geovec

        m = geovec.load_model(model)
    limits = Limits(max_request_bytes=int(max_request_mb * 1024 * 1024), max_items=max_items,
                    max_image_pixels=int(max_image_mp * 1e6),
                    max_request_pixels=int(max_request_mp * 1e6) if max_request_mp else None,
                    roots=[p.resolve() for p in root])
    app = create_app(db, m, limits, cors_origins=cors, basemap=bm)
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
