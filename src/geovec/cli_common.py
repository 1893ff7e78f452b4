"""Pieces every ``geovec`` sub-command shares: the ``--format`` option and tables that never cut a path."""

from __future__ import annotations

import sys
from typing import Any

import typer

FORMATS = ("table", "json")


FORMAT_HELP = "table (for people) or json (one JSON document on stdout, for programs)."


def format_option(default: str = "table", choices: tuple[str, ...] = FORMATS):
    """The shared ``--format`` / ``-f`` option."""
    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"--format must be one of {', '.join(choices)}, got {value!r}")
        return value

    return typer.Option(default, "--format", "-f", callback=check, help=" | ".join(choices) + ": " + FORMAT_HELP)


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, file=None) -> None:
    """``rows`` as a table: a rich table on a terminal, else tab-separated lines with a header (full values: a
    path is never cut, and ``cut -f`` / ``awk`` read it)."""
    out = file or sys.stdout
    if file is None and is_terminal(out):
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
        Console(file=out).print(table)
        return
    if title:
        print(f"# {title}", file=out)
    print("\t".join(columns), file=out)
    for r in rows:
        print("\t".join("" if r.get(c) is None else str(r.get(c)).replace("\t", " ") for c in columns), file=out)
