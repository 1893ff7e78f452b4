"""``geovec embed`` and ``geovec info``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import (ANY_FORMAT_HELP, BANDS_HELP, MAX_IMAGE_MP_HELP, format_option, parse_bands,
                                read_options)
from geovec.domain import TASK_KINDS

MODEL_HELP = "Bundled model name or checkpoint directory (default: the bundled geovec-compact)."


def check_task(value: Optional[str]) -> Optional[str]:
    """Typer callback: ``--task`` must be a known task kind (a usage error, exit 2, otherwise)."""
    if value is None:
        return None
    if value not in TASK_KINDS:
        raise typer.BadParameter(f"unknown task {value!r}; choose one of {', '.join(TASK_KINDS)}")
    return value


def with_bands(records, bands: Optional[tuple[int, ...]]):
    """Records whose (Geo)TIFF image items get ``bands`` unless they name their own."""
    from geovec.embed.sources import is_tiff

    for r in records:
        if bands and isinstance(r.item, dict) and is_tiff(r.item.get("image")) and r.item.get("bands") is None:
            r.item = {**r.item, "bands": list(bands)}
        yield r


def _run_embed(paths, out, model, batch_size, chunk_size, instruction, task, with_location, resume, threads, ray,
               bands=None):
    import geovec
    from geovec import exitcodes
    from geovec.embed import EmbedJob, EmbedJobError, iter_records

    try:
        records = list(with_bands(iter_records(paths), bands))
        if not records:
            typer.echo("nothing to embed: no images or .jsonl files under the given paths", err=True)
            raise typer.Exit(exitcodes.USAGE)
        if ray is not None:
            from geovec.embed.ray_embed import embed_records_with_ray  # optional extra: geovec[ray]

            kw = {"chunk_size": chunk_size} if chunk_size else {}
            summary = embed_records_with_ray(records, out=out, model=model, ray_address=ray, batch_size=batch_size,
                                             instruction=instruction, task=task, with_location=with_location,
                                             resume=resume, **kw)
        else:
            m = geovec.load_model(model, num_threads=threads)
            job = EmbedJob(m, out, batch_size=batch_size, chunk_size=chunk_size or 256, instruction=instruction,
                           with_location=with_location, task=task)
            summary = job.run(records, resume=resume)
    except EmbedJobError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(exitcodes.USAGE) from None
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: finished chunks are kept in {out.name}.partial/; rerun the same command to "
                   "resume", err=True)
        raise typer.Exit(exitcodes.INTERRUPTED) from None
    return summary


def embed(
    paths: list[Path] = typer.Argument(..., help="Image files, folders (recursive), GeoTIFFs, or JSONL files of items."),
    out: Path = typer.Option(..., "--out", "-o", help="Output GeoParquet file (the columns of `geovec index export`)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    batch_size: int = typer.Option(32, min=1, help="Items per forward pass."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", min=1,
                                             help="Items per shard written to <out>.partial/ (the most an "
                                                  "interruption loses; default 256, 4096 with --ray)."),
    instruction: Optional[str] = typer.Option(None, help="Instruction for items that have none of their own."),
    task: Optional[str] = typer.Option(None, callback=check_task,
                                       help="Use the model's query instruction for this task kind instead "
                                            f"({', '.join(TASK_KINDS)})."),
    with_location: bool = typer.Option(False, help="Also embed a GeoTIFF's centre lat/lon as a location token."),
    bands: Optional[str] = typer.Option(None, "--bands", help=BANDS_HELP + " A JSONL item's own 'bands' wins."),
    resume: bool = typer.Option(True, help="Skip ids already in --out or in an interrupted run's <out>.partial/, and "
                                           "keep every row already in --out (a rerun with other inputs appends). "
                                           "--no-resume embeds everything again and replaces --out."),
    max_image_mp: Optional[float] = typer.Option(None, "--max-image-mp", min=0.0, help=MAX_IMAGE_MP_HELP),
    any_raster_format: bool = typer.Option(False, "--any-raster-format", help=ANY_FORMAT_HELP),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for torch."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on a Ray cluster ('auto', 'local' or an address)."),
    fmt: str = format_option(),
) -> None:
    """Embed images / GeoTIFFs / JSONL items to GeoParquet 1.1: id, geometry (footprint, WKB), bbox, embedding,
    centre lat/lon, source path, model id and revision (the columns of `geovec index export`).

    A bad file (corrupt, too large, a decompression bomb, all NaN) is reported by name and skipped; the rest
    are embedded and written. Ids are unique: a file given twice is embedded once; a JSONL line repeating an
    earlier id fails, naming both lines. A rerun skips what is done and keeps every row already in --out.

    Exit codes: 0 all done; 1 finished but some inputs failed (each reported by name, the rest written);
    2 usage error, nothing written; 130 interrupted (rerun the same command to resume).
    """
    from geovec import exitcodes
    from geovec.index.cli import check_inputs

    check_inputs(paths, "image files, folders or .jsonl files")
    band_tuple = parse_bands(bands)
    with read_options(max_image_mp, any_raster_format):
        summary = _run_embed(paths, out, model, batch_size, chunk_size, instruction, task, with_location, resume,
                             threads, ray, band_tuple)
    if fmt == "json":
        import json

        typer.echo(json.dumps({"out": str(out), "embedded": summary.embedded, "skipped_done": summary.skipped_done,
                               "failed": dict(summary.failed), "total": summary.total, "rows": summary.rows,
                               "kept_previous": summary.kept_previous}, indent=2))
    else:
        typer.echo(f"embedded {summary.embedded} new, {summary.skipped_done} already done, "
                   f"{len(summary.failed)} failed, of {summary.total} -> {out} ({summary.rows} rows)")
        if summary.kept_previous:
            typer.echo(f"kept {summary.kept_previous} row(s) of earlier runs for inputs not given this time "
                       "(--no-resume replaces --out instead)")
    for rid, problem in summary.failed.items():
        typer.echo(f"  FAILED {rid}: {problem}", err=True)
    if summary.failed:
        raise typer.Exit(exitcodes.SOME_FAILED)


def info(model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP), fmt: str = format_option()) -> None:
    """Print the model's id, dimension, modalities, instructions and parameter counts."""
    import geovec
    from geovec.runtime import load_stamp
    from geovec.models.registry import resolve

    # a load of this checkpoint already checked with this backend and these packages recorded what info prints
    directory = resolve(model)
    stamp = load_stamp.read_stamp(load_stamp.stamp_key(directory, None, None)) if directory is not None else None
    s = stamp["summary"] if stamp is not None else load_stamp.summary(geovec.load_model(model))
    if fmt == "json":
        import json

        typer.echo(json.dumps({
            "model": s["model"], "revision": s["revision"], "architecture": s["architecture"],
            "backbone": s["backbone"], "dimension": s["dimension"], "similarity": "cosine", "backend": s["backend"],
            "modalities": ["image", "text", "box", "location", "instruction"], "image_size": s["image_size"],
            "pooling": s["pooling"], "parameters": s["parameters"], "prompts": s["prompts"],
            "geovec_version": geovec.__version__}, indent=2))
        return
    typer.echo(f"model        {s['model']} (revision {s['revision']}, architecture {s['architecture']}, "
               f"backbone {s['backbone']})")
    typer.echo(f"dimension    {s['dimension']} (L2-normalised, cosine similarity)")
    typer.echo(f"backend      {s['backend']} (geovec --backend / $GEOVEC_BACKEND: auto, onnx, openvino, torch; "
               "--precision / $GEOVEC_PRECISION: fp32, bf16, int8)")
    typer.echo("modalities   image, text, box (pixel xyxy), lat/lon (WGS84 degrees), instruction")
    typer.echo(f"image size   {s['image_size']}")
    typer.echo(f"pooling      {s['pooling']}")
    for k, v in s["parameters"].items():
        typer.echo(f"params       {k:<14} {v:>12,}")
    for task, text in s["query_instructions"].items():
        typer.echo(f"instruction  {task:<14} {text}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
    app.command("info")(info)
