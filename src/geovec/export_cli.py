"""``geovec export onnx`` and ``geovec export-merged``: the commands that export a model's checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import format_option


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


export_app = typer.Typer(help="Export a model's inference graphs (ONNX) for the fast CPU backends.",
                         no_args_is_help=True)


@export_app.command("onnx")
def export_onnx_cmd(
    model: str = typer.Argument(..., help="Bundled model name or checkpoint directory (single-encoder architecture)."),
    output: Optional[Path] = typer.Argument(None, help="Folder for the graphs and manifest.json (default: the "
                                                       "cache, where load_model finds them; MODEL/onnx is found too)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare each installed backend with torch on "
                                                                 "the fixed mixed batch and record the result."),
    fmt: str = format_option(),
) -> None:
    """Export the vision tower, location tower, encoder and projection head to ONNX, once per checkpoint.

    geovec.load_model(MODEL, backend="onnx"|"openvino"|"auto") then runs them; exports are build products
    (git-ignored), rebuilt from the checkpoint whenever needed."""
    import geovec
    from geovec.runtime import backends

    say = (lambda line: typer.echo(line, err=True)) if fmt == "json" else typer.echo
    from geovec.runtime import export as ex

    m = geovec.load_model(model, backend="torch")
    if not callable(getattr(m, "use_stages", None)):
        raise typer.BadParameter(f"{model} is a {m.config.architecture!r} model; ONNX export covers the single encoder")
    if output is None:
        paths, prints = ex.ensure_graphs(m, log=say)
        where = ex.graphs_cache()
        manifest_path = None
    else:
        where = ex.export_onnx(m, output)
        manifest_path = where / ex.MANIFEST
        paths, prints = ex.find_graphs(m, [where]), {g: ex.fingerprint(m, g) for g in ex.model_graphs(m)}
    say(f"graphs {', '.join(sorted(paths))} -> {where}")
    if not check:
        if fmt == "json":
            typer.echo(json.dumps({"graphs": sorted(paths), "dir": str(where)}, indent=2))
        return
    results = {}
    for name in backends.AUTO_ORDER:
        if not backends.installed(name):
            say(f"{name:<14} not installed ({backends.EXTRA_HINT[name]})")
            continue
        for precision in ("fp32", *(p for p, b in backends.PRECISION_BACKEND.items() if b == name)):
            graph_paths, graph_prints = backends.precision_graphs(m, paths, prints, precision, log=say)
            runner = backends.RUNNERS[name](graph_paths, precision=precision)
            report = backends.checked_faithfulness(m, runner, graph_prints)
            ok = report["min_cosine"] >= backends.threshold(precision)
            results[runner.label] = {**report, "passes": ok, "threshold": backends.threshold(precision)}
            say(f"{runner.label:<14} min cosine with torch {report['min_cosine']:.7f} over "
                       f"{report['n_items']} items ({'ok' if ok else 'FAILS'} >= {backends.threshold(precision)})")
    if manifest_path is not None:
        manifest = json.loads(manifest_path.read_text())
        manifest["faithfulness"] = results
        ex.write_json(manifest_path, manifest)
    if fmt == "json":
        typer.echo(json.dumps({"graphs": sorted(paths), "dir": str(where), "faithfulness": results}, indent=2,
                              default=float))


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
    app.command("export-merged")(export_merged)
