"""The ``geovec`` command. Each layer of the package adds its own sub-commands through a
``register(app)`` function in its ``cli`` module (bench, train, index, serve), so this file stays small.

One convention for every sub-command, applied here to all of them (:func:`conform`):

* ``-h`` / ``--help`` everywhere, ``geovec --version``;
* ``--out`` (``-o``) names what a command writes (a file or folder); an older spelling (``--output``,
  ``--output-dir``, ``--geoparquet``) or a positional OUTPUT keeps working beside it;
* ``--format table|json`` wherever a command prints results (``table`` for people; ``json`` on stdout for
  programs; a table that is not printed to a terminal is tab-separated and never cuts a path);
* one set of exit codes (:mod:`geovec.exitcodes`), in every command's ``--help``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import typing
from pathlib import Path
from typing import Optional

import typer
from typer.models import ArgumentInfo, OptionInfo

from geovec import exitcodes

LEGACY_OUT_OPTIONS = ("--output", "--output-dir", "--geoparquet")  # other names an output had
OUT_ARGUMENTS = ("output", "out_dir", "cache_dir")  # positional outputs: --out names them too


def _option_names(fn) -> set[str]:
    names: set[str] = set()
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        hints = {}
    for prm in inspect.signature(fn).parameters.values():
        if isinstance(prm.default, OptionInfo):
            if not prm.default.param_decls:  # name it the way typer would have
                flag = prm.name.replace("_", "-")
                is_bool = hints.get(prm.name, prm.annotation) in (bool, "bool")
                # a boolean option keeps typer's --x/--no-x pair (e.g. embed --no-resume)
                prm.default.param_decls = (f"--{flag}/--no-{flag}",) if is_bool else (f"--{flag}",)
            for decl in prm.default.param_decls:
                names.update(decl.split("/"))
    return names


def _with_out(fn):
    """``fn`` (a command callback) with the shared ``--out`` spelling: an older option name gets ``--out`` (and
    ``-o``) beside it; a positional output also becomes ``--out PATH``. Other commands are returned as they are."""
    sig = inspect.signature(fn)
    names = _option_names(fn)
    if "--out" in names:
        if "-o" not in names:  # the short name goes with it
            for prm in sig.parameters.values():
                info = prm.default
                if isinstance(info, OptionInfo) and "--out" in (info.param_decls or ()):
                    info.param_decls = (*info.param_decls, "-o")
        return fn
    for prm in sig.parameters.values():
        info = prm.default
        decls = getattr(info, "param_decls", None)
        if isinstance(info, OptionInfo) and decls and any(d in LEGACY_OUT_OPTIONS for d in decls):
            info.param_decls = ("--out", *decls, *(() if "-o" in names else ("-o",)))
            return fn
    arg = next((p for p in sig.parameters.values() if isinstance(p.default, ArgumentInfo) and p.name in OUT_ARGUMENTS),
               None)
    if arg is None:
        return fn
    hints = typing.get_type_hints(fn)
    required = arg.default.default is ...
    optional_arg = arg.replace(default=typer.Argument(None, help=arg.default.help, show_default=False),
                               annotation=Optional[hints.get(arg.name, Path)])
    out = inspect.Parameter("out_option", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                            default=typer.Option(None, "--out", *(() if "-o" in names else ("-o",)), metavar="PATH",
                                                 help=f"Where to write (the {arg.name.upper()} argument as an option)."))
    params = [optional_arg if p.name == arg.name else p.replace(annotation=hints.get(p.name, p.annotation))
              for p in sig.parameters.values()] + [out]

    @functools.wraps(fn)
    def command(*args, out_option=None, **kwargs):
        given = kwargs.get(arg.name)
        if out_option is not None and given is not None and str(given) != str(out_option):
            raise typer.BadParameter(f"give the output once: --out {out_option} or {given}")
        kwargs[arg.name] = given if given is not None else out_option
        if kwargs[arg.name] is None and required:
            raise typer.BadParameter(f"missing the output: give --out PATH (or {arg.name.upper()})")
        return fn(*args, **kwargs)

    command.__signature__ = sig.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def conform(typer_app: typer.Typer) -> None:
    """Give every command of ``typer_app`` (recursively) the shared conventions: ``--out`` for outputs and the
    exit codes in its ``--help``."""
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _with_out(info.callback)
        if not info.epilog:
            info.epilog = exitcodes.HELP
    callback = typer_app.registered_callback
    if callback is not None and callback.callback is not None and typer_app is not app:
        callback.callback = _with_out(callback.callback)
        if not callback.epilog:
            callback.epilog = exitcodes.HELP
    for group in typer_app.registered_groups:
        if not group.epilog:
            group.epilog = exitcodes.HELP
        if group.typer_instance is not None:
            conform(group.typer_instance)


app = typer.Typer(
    help="geovec: embed interleaved remote-sensing inputs (image, text, boxes, lat/lon), benchmark, train, index, search, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exitcodes.HELP,
    rich_markup_mode=None,  # click's plain help: wraps to the terminal (80 columns) without cutting option help
)


def _version(value: bool) -> None:
    if value:
        import geovec

        typer.echo(f"geovec {geovec.__version__}")
        raise typer.Exit(exitcodes.OK)


@app.callback()
def _main(
    backend: Optional[str] = typer.Option(
        None, "--backend", envvar="GEOVEC_BACKEND",
        help="Inference backend of every model a command loads: auto (default), onnx, openvino, torch."),
    precision: Optional[str] = typer.Option(
        None, "--precision", envvar="GEOVEC_PRECISION",
        help="fp32 (default), bf16 (OpenVINO) or int8 (onnxruntime): reduced precision is only used when asked for."),
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print geovec's version and exit."),
) -> None:
    """geovec: embed, benchmark, train, index, search, serve."""  # keeps `geovec <command>` a command group
    if precision:
        from geovec.runtime.backend_names import PRECISIONS

        if precision.lower() not in PRECISIONS:
            raise typer.BadParameter(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        os.environ["GEOVEC_PRECISION"] = precision.lower()  # read by geovec.load_model
    if backend:
        from geovec.runtime.backend_names import requested_backend

        try:
            os.environ["GEOVEC_BACKEND"] = requested_backend(backend)  # read by geovec.load_model
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None


# modules whose register(app) adds sub-commands
SUBCOMMAND_MODULES = ("geovec.demo", "geovec.embed.cli", "geovec.export_cli", "geovec.data.cli", "geovec.bench.cli",
                      "geovec.train.cli", "geovec.index.cli", "geovec.serve.cli")


def _register_all() -> None:
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(app)
    conform(app)


_register_all()


def main() -> None:
    """The ``geovec`` entry point: the app, with the exit codes of :mod:`geovec.exitcodes` for a missing package
    (one line naming the install command) and for ctrl-c."""
    from geovec.errors import GeoVecSetupError

    try:
        app(prog_name="geovec")
    except GeoVecSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(exitcodes.SETUP)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(exitcodes.INTERRUPTED)


if __name__ == "__main__":
    main()
