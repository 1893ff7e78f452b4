"""``geovec index build|export|info`` and ``geovec search``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from geovec.cli_common import ANY_FORMAT_HELP, BANDS_HELP, format_option, print_table

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


def fail(message: str):
    """A usage error: one line on stderr, exit 2 (nothing was written)."""
    from geovec import exitcodes

    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exitcodes.USAGE)


def open_index(db: Path, writable: bool = False):
    """The index at ``db`` (read-only unless ``writable``: no LanceDB import), or a one-line usage error when
    ``db`` is not an index."""
    from geovec.index.store import ChipStore, ReadOnlyChipStore, UnreadableIndexError

    try:
        return ChipStore(db) if writable else ReadOnlyChipStore(db)
    except (FileNotFoundError, NotADirectoryError, UnreadableIndexError) as e:
        fail(str(e))
    except (OSError, ValueError) as e:  # an unreadable or foreign directory
        fail(f"{db} cannot be read as a geovec index: {e}")


def check_inputs(paths: List[Path], what: str = "image files or folders") -> None:
    """Every input path exists (else a usage error naming it): nothing is written for a typo."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        fail(f"{missing[0]} does not exist{more}; give {what}")


def check_build_target(db: Path) -> None:
    """``--db`` is an index, or a path where one can be created (not a file, not some other non-empty folder)."""
    from geovec.index.store import META_FILE

    if db.exists() and not db.is_dir():
        fail(f"--db {db} is a file, not an index directory")
    if db.is_dir() and not (db / META_FILE).exists() and any(p.name != ".geovec-write.lock" for p in db.iterdir()):
        fail(f"--db {db} is a folder that is not a geovec index (no {META_FILE}); give a new or an index folder")


def _load_model(name: str | None):
    import geovec

    return geovec.load_model(name)


def _bands(text: str | None) -> tuple[int, ...] | None:
    from geovec.cli_common import parse_bands

    return parse_bands(text)


@index_app.command("build")
def build_cmd(
    paths: List[Path] = typer.Argument(..., help="Image files / GeoTIFFs, or folders searched recursively."),
    db: Path = typer.Option(..., "--db", help="Index directory (LanceDB); created if missing, else extended."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name or checkpoint dir (default: geovec-compact)."),
    chip_size: int = typer.Option(256, "--chip-size", min=8, help="Chip width = height in pixels."),
    overlap: int = typer.Option(0, "--overlap", min=0, help="Overlap of neighbouring chips in pixels."),
    resize: Optional[int] = typer.Option(None, "--resize", min=8,
                                         help="Resize each chip to this many pixels before embedding (same "
                                              "footprint). 224 runs geovec-compact's towers once per chip: about "
                                              "1.7x faster for 256-px chips, scores slightly lower (docs/performance.md)."),
    bands: Optional[str] = typer.Option(None, "--bands", help=BANDS_HELP),
    batch_size: int = typer.Option(8, "--batch-size", min=1,
                                   help="Chips per forward pass (larger needs more memory, rarely faster on a CPU)."),
    commit_every: int = typer.Option(256, "--commit-every", min=1,
                                     help="Chips embedded per committed step (resume unit)."),
    with_location: bool = typer.Option(False, "--with-location/--no-location",
                                       help="Embed each chip's centre lat/lon with its pixels."),
    prune: bool = typer.Option(False, "--prune", help="Remove the chips of indexed files that no longer exist."),
    lock_timeout: Optional[float] = typer.Option(None, "--lock-timeout", min=0.0, metavar="SECONDS",
                                                 help="Wait at most this long while another process writes to "
                                                      "--db (default: wait until it has finished)."),
    max_image_mp: Optional[float] = typer.Option(None, "--max-image-mp", min=0.0,
                                                 help="Largest PNG / JPEG decoded whole to cut its chips, megapixels "
                                                      "(0 = no limit; default 100 or $GEOVEC_MAX_IMAGE_MP). "
                                                      "GeoTIFFs of any size are read chip by chip."),
    any_raster_format: bool = typer.Option(False, "--any-raster-format", help=ANY_FORMAT_HELP),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help=RAY_HELP),
    ray_concurrency: int = typer.Option(2, "--ray-concurrency", min=1, help="Ray actors (model copies)."),
    fmt: str = format_option(),
):
    """Cut images into chips, embed them, and store them in a LanceDB index (resumable, incremental).

    Unreadable files (corrupt, decompression bombs, too large) are reported by name
    and skipped; chips with no valid pixel (nodata value, alpha 0, masked or NaN)
    are counted and skipped. Indexed files that were deleted are listed; --prune
    removes their chips. One build writes to an index at a time: a second one
    waits (--lock-timeout). Progress goes to stderr (lines when not a terminal).

    Exit codes: 0 all done; 1 finished but some inputs failed (each reported by name, the rest written);
    2 usage error, nothing written; 130 interrupted (rerun the same command to resume).
    """
    from rich.console import Console

    from geovec import exitcodes
    from geovec.cli_common import read_options
    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.index.chips import discover_files
    from geovec.index.store import IndexLockedError, IndexMismatchError

    check_inputs(paths)
    check_build_target(db)
    if not discover_files(paths)[0]:
        fail("no image files (.tif, .png, .jpg, ...) under " + ", ".join(map(str, paths)))
    band_tuple = _bands(bands)
    try:
        spec = ChipSpec(chip_size, overlap, band_tuple, resize)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    ray_options = None
    if ray is not None:
        from functools import partial

        import geovec

        ray_options = {"model_factory": partial(geovec.load_model, model), "concurrency": ray_concurrency}
    con = Console(stderr=True, soft_wrap=True)  # soft wrap: a long path is never broken or cut
    try:
        m = _load_model(model)
        with read_options(max_image_mp, any_raster_format):
            summary = build_index(paths, db, m, spec, batch_size=batch_size, commit_every=commit_every,
                                  with_location=with_location, ray_address=ray, ray_options=ray_options, prune=prune,
                                  lock_timeout=lock_timeout)
    except (IndexMismatchError, IndexLockedError) as e:
        con.print(f"[red]error[/]: {e}")
        raise typer.Exit(exitcodes.USAGE) from None
    except KeyboardInterrupt:
        con.print(f"\ninterrupted: every committed step is kept in {db}; rerun the same command to resume")
        raise typer.Exit(exitcodes.INTERRUPTED) from None
    if fmt == "json":
        typer.echo(json.dumps({"db": str(db), "rows": summary.rows, "files": summary.files,
                               "chips_embedded": summary.chips_embedded, "chips_skipped_done": summary.chips_skipped_done,
                               "chips_empty": summary.chips_empty, "ann_index": bool(summary.ann_index),
                               "chips_per_s": summary.chips_per_s, "pruned_files": summary.pruned_files,
                               "pruned_chips": summary.pruned_chips, "missing_files": list(summary.missing_files),
                               "failed": {str(k): v for k, v in summary.failed.items()}}, indent=2))
    con.print(f"[bold]{_escape(str(db))}[/]: {summary.rows} chips from {summary.files} file(s); embedded {summary.chips_embedded} "
              f"now, {summary.chips_skipped_done} already indexed; ANN index: {'yes' if summary.ann_index else 'no (exact)'}"
              f"; {summary.chips_per_s:.1f} chips/s")
    if summary.chips_empty:
        con.print(f"skipped {summary.chips_empty} chip(s) with no valid pixel (all nodata: nodata value, alpha 0, "
                  "masked or NaN)")
    if summary.pruned_files:
        con.print(f"pruned {summary.pruned_chips} chip(s) of {summary.pruned_files} deleted file(s)")
    elif summary.missing_files:
        con.print(f"{len(summary.missing_files)} indexed file(s) no longer exist (--prune removes their chips), "
                  f"e.g. {summary.missing_files[0]}")
    for path, problem in summary.failed.items():
        con.print("[red]skipped[/] " + _escape(f"{path}: {problem}"))
    if summary.failed:
        raise typer.Exit(exitcodes.SOME_FAILED)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


EXPORT_FORMATS = ("geoparquet", "geojson")


@index_app.command("export")
def export_cmd(
    db: Path = typer.Option(..., "--db", help="Index directory."),
    out: Path = typer.Option(..., "--out", "-o", "--geoparquet", help="Output file."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f",
                                      help="geoparquet (GeoParquet 1.1 with embeddings) or geojson (RFC 7946 "
                                           "footprints and chip properties, no embeddings). Default: from "
                                           "the --out suffix (.geojson / .json), else geoparquet."),
):
    """Write the index as GeoParquet 1.1 (WKB footprints in EPSG:4326, bbox
    covering, embeddings, Hilbert order) or as GeoJSON."""
    from geovec.index.export import export_geojson, export_geoparquet

    if fmt is None:
        fmt = "geojson" if out.suffix.lower() in (".geojson", ".json") else "geoparquet"
    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    store = open_index(db)
    written = (export_geojson if fmt == "geojson" else export_geoparquet)(store, out)
    typer.echo(f"wrote {len(store)} rows to {written} ({fmt})")


@index_app.command("info")
def info_cmd(db: Path = typer.Option(..., "--db", help="Index directory."), fmt: str = format_option()):
    """Model, chipping and size of an index, and chip ids stored more than once
    (--format json: as JSON)."""
    from dataclasses import asdict

    store = open_index(db)
    dups = store.duplicate_ids()
    doc = {**asdict(store.info), "rows": len(store), "ann_index": store.has_vector_index(),
           "duplicate_ids": len(dups), "duplicate_rows": sum(dups.values()) - len(dups)}
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2))
    else:
        print_table([{"field": k, "value": json.dumps(v) if isinstance(v, (dict, list)) else v} for k, v in doc.items()],
                    ["field", "value"], title=str(db))
    if dups:
        typer.echo(f"warning: {len(dups)} chip id(s) stored more than once ({doc['duplicate_rows']} extra row(s)), "
                   f"e.g. {next(iter(dups))}; `geovec index repair --db {db}` removes them", err=True)


@index_app.command("repair")
def repair_cmd(db: Path = typer.Option(..., "--db", help="Index directory."),
               lock_timeout: Optional[float] = typer.Option(None, "--lock-timeout", min=0.0, metavar="SECONDS",
                                                            help="Wait at most this long for other writers.")):
    """Remove duplicated chips (one row per chip id is kept) and rebuild the
    search indices. Waits while another process writes to the index."""
    from geovec.index.store import IndexLockedError, write_lock

    store = open_index(db, writable=True)
    try:
        with write_lock(db, lock_timeout):
            n_ids = len(store.duplicate_ids())
            removed = store.remove_duplicates()
            if removed:
                store.ensure_indices(force=store.has_vector_index())
    except IndexLockedError as e:
        fail(str(e))
    if removed:
        typer.echo(f"removed {removed} duplicate row(s) of {n_ids} chip id(s); {db} holds {len(store)} chips")
    else:
        typer.echo(f"{db}: no duplicate chips ({len(store)} chips)")


def search_cmd(
    db: Path = typer.Option(..., "--db", help="Index directory."),
    like: Optional[str] = typer.Option(None, "--like", metavar="CHIP_ID",
                                       help="Find chips similar to this indexed chip (its stored vector; the 'id' of "
                                            "a search result, PATH#col,row,width,height). Combines with the filters "
                                            "--bbox and --near + --within only."),
    text: Optional[str] = typer.Option(None, "--text", help="Text part of the query."),
    image: Optional[Path] = typer.Option(None, "--image", help="Image part of the query (file)."),
    box: Optional[str] = typer.Option(None, "--box", help="Region of --image: x1,y1,x2,y2 pixels."),
    near: Optional[str] = typer.Option(None, "--near", help="Place part of the query: LAT,LON degrees."),
    within: Optional[float] = typer.Option(None, "--within", help="Only chips whose centre is within KM of --near."),
    bbox: Optional[str] = typer.Option(None, "--bbox", help="Only chips intersecting minlon,minlat,maxlon,maxlat."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of results."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="Override the model's query instruction."),
    exact: bool = typer.Option(False, "--exact", help="Exact search (bypass the ANN index)."),
    fmt: str = format_option(choices=("table", "json", "geojson")),
    output: Optional[Path] = typer.Option(None, "--out", "-o", "--output", help="Write to a file instead of stdout."),
    model: Optional[str] = typer.Option(None, "--model", help="Query model (default: the index's own)."),
    max_image_mp: Optional[float] = typer.Option(None, "--max-image-mp", min=0.0,
                                                 help="Largest --image read whole, megapixels (0 = no limit; "
                                                      "default 100 or $GEOVEC_MAX_IMAGE_MP)."),
):
    """Search an index with one interleaved query (text / image / region / place) or a chip, and spatial
    pre-filters.

    An image alone (or an image + --box) is embedded like the index's chips (find-similar: a chip's own pixels
    find it at rank 1); --like CHIP_ID uses the stored vector of an indexed chip. Queries with text or a place
    use the model's query instruction.

    --near is LAT,LON (latitude first): |lat| > 90 is an error, and a place far from every indexed chip whose
    swapped pair is near them gets a warning. A table that is not printed to a terminal (a pipe, --out) is
    tab-separated, with full paths.
    """
    from geovec import exitcodes
    from geovec.cli_common import read_options
    from geovec.index.api import GeoIndex
    from geovec.index.search import SearchQuery, hits_to_geojson, swapped_near_warning
    from geovec.inputs import GeoVecInputError

    q = SearchQuery(text=text, image=image, box=_floats(box, 4, "--box"), near=_floats(near, 2, "--near"),
                    within_km=within, bbox=_floats(bbox, 4, "--bbox"), k=k, instruction=instruction, exact=exact,
                    like=like)
    try:
        if q.near is not None and abs(q.near.lat) > 90:
            raise ValueError(f"--near {near}: latitude {q.near.lat:g} is outside [-90, 90]; --near is LAT,LON "
                             "(latitude first)" + (f": did you mean --near {q.near.lon:g},{q.near.lat:g}?"
                                                   if abs(q.near.lon) <= 90 else ""))
        q.validate()
        index = GeoIndex(db, _load_model(model) if model else None)
        if q.near is not None:
            warning = swapped_near_warning(index.store, q.near)
            if warning:
                typer.echo(f"warning: --near {near}: {warning}", err=True)
        with read_options(max_image_mp, False):
            hits = index.query(q)
    except (ValueError, FileNotFoundError, GeoVecInputError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=exitcodes.USAGE) from None
    if fmt == "table":
        rows = [{"#": h.rank, "score": f"{h.score:.4f}", "path": h.path, "window": ",".join(map(str, h.window)),
                 "centre lat, lon": "" if h.centre_lat is None else f"{h.centre_lat:.5f}, {h.centre_lon:.5f}",
                 "km": "" if h.distance_km is None else f"{h.distance_km:.2f}"} for h in hits]
        cols = ["#", "score", "path", "window", "centre lat, lon", "km"]
        title = f"{len(hits)} result(s) from {db} (task: {q.task}, {q.side} side)"
        if output:
            with open(output, "w") as f:
                print_table(rows, cols, title=title, file=f)
        else:
            print_table(rows, cols, title=title)
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
