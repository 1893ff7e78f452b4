"""``geovec export-merged`` and ``geovec tiny-model``: checkpoint tools for the VLM backbones."""

from __future__ import annotations

from pathlib import Path

import typer


def export_merged(
    checkpoint: Path = typer.Argument(..., help="geovec checkpoint directory of a qwen2-vl model with a LoRA/DoRA adapter"),
    output: Path = typer.Argument(..., help="directory for the standalone checkpoint"),
    dtype: str = typer.Option("keep", help="weights dtype of the export: keep, float32, bfloat16, float16"),
) -> None:
    """Merge the adapter into the backbone and write a standalone checkpoint (plain transformers model under
    OUTPUT/backbone plus the geovec config); load it with geovec.load_model(OUTPUT)."""
    import torch

    import geovec

    model = geovec.load_model(checkpoint, device="cpu")
    if not hasattr(model, "export_merged"):
        raise typer.BadParameter(f"{checkpoint} is a {model.config.architecture!r} model; only qwen2-vl has an adapter to merge")
    types = {"keep": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in types:
        raise typer.BadParameter(f"dtype must be one of {list(types)}")
    out = model.export_merged(output, dtype=types[dtype])
    typer.echo(f"wrote {out}")


def tiny_model(
    kind: str = typer.Argument(..., help="smol, qwen2-vl or qwen2.5-vl"),
    output: Path = typer.Argument(..., help="directory to write"),
    seed: int = typer.Option(0, help="random-init seed"),
) -> None:
    """Write a tiny random-init backbone directory (seconds, offline) for smoke tests of training and export.
    Use it as backbone_path of a geovec config."""
    from geovec.models.tiny import write_tiny_qwen2vl, write_tiny_smol

    if kind == "smol":
        out = write_tiny_smol(output, seed=seed)
    elif kind in ("qwen2-vl", "qwen2.5-vl"):
        out = write_tiny_qwen2vl(output, variant=kind, seed=seed)
    else:
        raise typer.BadParameter("kind must be smol, qwen2-vl or qwen2.5-vl")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("export-merged")(export_merged)
    app.command("tiny-model")(tiny_model)
