"""``geovec index build|export|info`` and ``geovec search``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

index_app = typer.Typer(help="Build, inspect and export a searchable index of imagery (LanceDB directory).",
                        no_args_is_help=True)

RAY_HELP = ("Embed on Ray: 'local' starts a local Ray instance, or the ADDRESS of a cluster "
            "('auto', 'ray://head:10001').")


def _floats(text: str | None, n: int, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{name} must be {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise typer.BadParameter(f"{name} must be {n} comma-separated numbers, got {text!r}")
    return vals


def _load_model(name: str | None):
    import geovec

    return geovec.load_model(name)


@index_app.command("build")
def build_cmd(
    paths: List[Path] = typer.Argument(..., help="Image files / GeoTIFFs, or folders searched recursively."),
    db: Path = typer.Option(..., "--db", help="Index directory (LanceDB); created if missing, else extended."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name or checkpoint dir (default: geovec-compact)."),
    chip_size: int = typer.Option(256, "--chip-size", help="Chip width = height in pixels."),
    overlap: int = typer.Option(0, "--overlap", help="Overlap of neighbouring chips in pixels."),
    bands: Optional[str] = typer.Option(None, "--bands", help="1-based band numbers for R,G,B, e.g. 4,3,2."),
    batch_size: int = typer.Option(32, "--batch-size", help="Chips per forward pass."),
    commit_every: int = typer.Option(256, "--commit-every", help="Chips embedded per committed step (resume unit)."),
    with_location: bool = typer.Option(False, "--with-location/--no-location",
                                       help="Embed each chip's centre lat/lon with its pixels."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help=RAY_HELP),
    ray_concurrency: int = typer.Option(2, "--ray-concurrency", help="Ray actors (model copies)."),
):
    """Cut images into chips, embed them, and store them in a LanceDB index (resumable, incremental)."""
    from rich.console import Console

    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec

    band_tuple = tuple(int(b) for b in bands.split(",")) if bands else None
    try:
        spec = ChipSpec(chip_size, overlap, band_tuple)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    m = _load_model(model)
    ray_options = None
    if ray is not None:
        from functools import partial

        import geovec

        ray_options = {"model_factory": partial(geovec.load_model, model), "concurrency": ray_concurrency}
    summary = build_index(paths, db, m, spec, batch_size=batch_size, commit_every=commit_every,
                          with_location=with_location, ray_address=ray, ray_options=ray_options)
    con = Console(stderr=True)
    con.print(f"[bold]{db}[/]: {summary.rows} chips from {summary.files} file(s); embedded {summary.chips_embedded} "
              f"now, {summary.chips_skipped_done} already indexed; ANN index: {'yes' if summary.ann_index else 'no (exact)'}"
              f"; {summary.chips_per_s:.1f} chips/s")
    for path, problem in summary.failed.items():
        con.print(f"[red]skipped[/] {path}: {problem}")
    if summary.failed:
        raise typer.Exit(code=2 if summary.chips_embedded + summary.chips_skipped_done == 0 else 0)


@index_app.command("export")
def export_cmd(
    db: Path = typer.Option(..., "--db", help="Index directory."),
    geoparquet: Path = typer.Option(..., "--geoparquet", help="Output GeoParquet 1.1 file."),
):
    """Write the index as GeoParquet 1.1 (WKB footprints in EPSG:4326, bbox covering, embeddings, Hilbert order)."""
    from geovec.index.export import export_geoparquet
    from geovec.index.store import ChipStore

    store = ChipStore(db)
    out = export_geoparquet(store, geoparquet)
    typer.echo(f"wrote {len(store)} rows to {out}")


@index_app.command("info")
def info_cmd(db: Path = typer.Option(..., "--db", help="Index directory.")):
    """Model, chipping and size of an index, as JSON."""
    from dataclasses import asdict

    from geovec.index.store import ChipStore

    store = ChipStore(db)
    typer.echo(json.dumps({**asdict(store.info), "rows": len(store), "ann_index": store.has_vector_index()}, indent=2))


def search_cmd(
    db: Path = typer.Option(..., "--db", help="Index directory."),
    text: Optional[str] = typer.Option(None, "--text", help="Text part of the query."),
    image: Optional[Path] = typer.Option(None, "--image", help="Image part of the query (file)."),
    box: Optional[str] = typer.Option(None, "--box", help="Region of --image: x1,y1,x2,y2 pixels."),
    near: Optional[str] = typer.Option(None, "--near", help="Place part of the query: LAT,LON degrees."),
    within: Optional[float] = typer.Option(None, "--within", help="Only chips whose centre is within KM of --near."),
    bbox: Optional[str] = typer.Option(None, "--bbox", help="Only chips intersecting minlon,minlat,maxlon,maxlat."),
    k: int = typer.Option(10, "-k", "--k", help="Number of results."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="Override the model's query instruction."),
    exact: bool = typer.Option(False, "--exact", help="Exact search (bypass the ANN index)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or geojson."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to a file instead of stdout."),
    model: Optional[str] = typer.Option(None, "--model", help="Query model (default: the index's own)."),
):
    """Search an index with one interleaved query (text / image / region / place) and spatial pre-filters."""
    from geovec.index.api import GeoIndex
    from geovec.index.search import SearchQuery, hits_to_geojson
    from geovec.inputs import GeoVecInputError

    if fmt not in ("table", "json", "geojson"):
        raise typer.BadParameter("--format must be table, json or geojson")
    q = SearchQuery(text=text, image=image, box=_floats(box, 4, "--box"), near=_floats(near, 2, "--near"),
                    within_km=within, bbox=_floats(bbox, 4, "--bbox"), k=k, instruction=instruction, exact=exact)
    try:
        q.validate()
        index = GeoIndex(db, _load_model(model) if model else None)
        hits = index.query(q)
    except (ValueError, FileNotFoundError, GeoVecInputError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(hits)} result(s) from {db} (task: {q.task})")
        for col in ("#", "score", "path", "window", "centre lat, lon", "km"):
            table.add_column(col)
        for h in hits:
            centre = "" if h.centre_lat is None else f"{h.centre_lat:.5f}, {h.centre_lon:.5f}"
            km = "" if h.distance_km is None else f"{h.distance_km:.2f}"
            table.add_row(str(h.rank), f"{h.score:.4f}", h.path, ",".join(map(str, h.window)), centre, km)
        if output:
            with open(output, "w") as f:
                Console(file=f, width=200).print(table)
        else:
            Console().print(table)
        return
    doc = hits_to_geojson(hits, q) if fmt == "geojson" else [h.to_dict() for h in hits]
    text_out = json.dumps(doc, indent=2)
    if output:
        output.write_text(text_out)
    else:
        typer.echo(text_out)


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
    app.command("search")(search_cmd)
