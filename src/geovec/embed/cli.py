"""``geovec embed`` and ``geovec info``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

MODEL_HELP = "Bundled model name or checkpoint directory (default: the bundled geovec-compact)."


def embed(
    paths: list[Path] = typer.Argument(..., help="Image files, folders (recursive), GeoTIFFs, or JSONL files of items."),
    out: Path = typer.Option(..., "--out", "-o", help="Output parquet file."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    batch_size: int = typer.Option(32, help="Items per forward pass."),
    instruction: Optional[str] = typer.Option(None, help="Instruction for items that have none of their own."),
    task: Optional[str] = typer.Option(None, help="Use the model's query instruction for this task kind instead."),
    with_location: bool = typer.Option(False, help="Also embed a GeoTIFF's centre lat/lon as a location token."),
    resume: bool = typer.Option(True, help="Continue an interrupted job / keep rows already in --out."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on a Ray cluster ('auto', 'local' or an address)."),
) -> None:
    """Embed images / GeoTIFFs / JSONL items to parquet: id, source, embedding, lat/lon, footprint, model id.

    A bad file is reported by name and skipped; the rest are embedded and written. Exit code 1 when some failed.
    """
    import geovec
    from geovec.embed import EmbedJob, iter_records

    records = list(iter_records(paths))
    if not records:
        typer.echo("nothing to embed: no images or .jsonl files under the given paths", err=True)
        raise typer.Exit(2)
    if ray is not None:
        from geovec.index.ray_runner import embed_records_with_ray  # optional extra: geovec[ray]

        summary = embed_records_with_ray(records, out=out, model=model, ray_address=ray, batch_size=batch_size,
                                         instruction=instruction, task=task, with_location=with_location)
    else:
        m = geovec.load_model(model, num_threads=threads)
        if task is not None:
            instruction = instruction or m.query_instruction(task)
        job = EmbedJob(m, out, batch_size=batch_size, instruction=instruction, with_location=with_location)
        summary = job.run(records, resume=resume)
    typer.echo(f"embedded {summary.embedded} new, {summary.skipped_done} already done, "
               f"{len(summary.failed)} failed, of {summary.total} -> {out}")
    for rid, problem in summary.failed.items():
        typer.echo(f"  FAILED {rid}: {problem}", err=True)
    if summary.failed:
        raise typer.Exit(1)


def info(model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP)) -> None:
    """Print the model's id, dimension, modalities, instructions and parameter counts."""
    import geovec

    m = geovec.load_model(model)
    cfg = m.config
    typer.echo(f"model        {m.model_id} (revision {m.revision}, architecture {cfg.architecture}, backbone {cfg.backbone})")
    typer.echo(f"dimension    {m.embed_dim} (L2-normalised, cosine similarity)")
    typer.echo(f"backend      {getattr(m, 'backend', 'torch')} (geovec --backend / $GEOVEC_BACKEND: auto, onnx, openvino, torch)")
    typer.echo("modalities   image, text, box (pixel xyxy), lat/lon (WGS84 degrees), instruction")
    if cfg.architecture == "single-encoder":
        typer.echo(f"image size   longer side {cfg.image_min_size}-{cfg.image_max_size} px, "
                   f"{cfg.image_grid}x{cfg.image_grid} image tokens")
    else:  # VLMs tokenize images natively (pixel caps in config.extra)
        typer.echo(f"image size   native {cfg.architecture} image tokens, caps {cfg.extra.get('min_pixels')}-{cfg.extra.get('max_pixels')} px")
    typer.echo(f"pooling      {cfg.pooling}")
    counts = m.parameter_counts() if hasattr(m, "parameter_counts") else {}
    for k, v in counts.items():
        typer.echo(f"params       {k:<14} {v:>12,}")
    for task, text in cfg.query_instructions.items():
        typer.echo(f"instruction  {task:<14} {text}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
    app.command("info")(info)
