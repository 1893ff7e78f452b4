"""``geovec serve``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def serve_cmd(
    db: Optional[Path] = typer.Option(None, "--db", help="Index directory to search (omit for embeddings only)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name or checkpoint dir (default: the index's)."),
    root: List[Path] = typer.Option([], "--root", help="Folder whose files requests may name by path (repeatable)."),
    max_request_mb: float = typer.Option(16.0, "--max-request-mb", help="Largest request body, MiB."),
    max_image_mp: float = typer.Option(22.0, "--max-image-mp", help="Largest image per item, megapixels."),
    max_items: int = typer.Option(256, "--max-items", help="Most items per /v1/embeddings request."),
):
    """Serve /v1/embeddings (OpenAI-compatible, multimodal), /search, /healthz and the map page at /."""
    import uvicorn

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    m = None
    if model:
        import geovec

        m = geovec.load_model(model)
    limits = Limits(max_request_bytes=int(max_request_mb * 1024 * 1024), max_items=max_items,
                    max_image_pixels=int(max_image_mp * 1e6), roots=[p.resolve() for p in root])
    app = create_app(db, m, limits)
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
