"""The ``geovec`` command. Each layer of the package adds its own sub-commands through a
``register(app)`` function in its ``cli`` module (bench, train, index, serve), so this file stays small."""

from __future__ import annotations

import importlib
import os
from typing import Optional

import typer

app = typer.Typer(
    help="geovec: embed interleaved remote-sensing inputs (image, text, boxes, lat/lon), benchmark, train, index, search, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _main(
    backend: Optional[str] = typer.Option(
        None, "--backend", envvar="GEOVEC_BACKEND",
        help="Inference backend of every model a command loads: auto (default), onnx, openvino, torch."),
) -> None:
    """geovec: embed, benchmark, train, index, search, serve."""  # keeps `geovec <command>` a command group
    if backend:
        from geovec.models.backends import requested_backend

        try:
            os.environ["GEOVEC_BACKEND"] = requested_backend(backend)  # read by geovec.load_model
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None


# modules whose register(app) adds sub-commands; a module that does not exist yet is skipped
SUBCOMMAND_MODULES = ("geovec.demo", "geovec.embed.cli", "geovec.models.cli", "geovec.bench.cli", "geovec.train.cli", "geovec.index.cli",
                      "geovec.serve.cli")


def _register_all() -> None:
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                continue  # the layer (or its package) is not there yet
            raise
        module.register(app)


_register_all()

if __name__ == "__main__":
    app()
