"""Pieces every ``geovec`` sub-command shares: the ``--format`` option, tables that never cut a path, and the
image-reading options (``--max-image-mp``, ``--any-raster-format``, ``--bands``) of the commands that read files."""

from __future__ import annotations

import sys
from typing import Any, Optional

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


MAX_IMAGE_MP_HELP = ("Largest image read whole, megapixels (width x height / 1e6; 0 = no limit; default 100 or "
                     "$GEOVEC_MAX_IMAGE_MP). Checked from the header before decoding; a larger file is reported "
                     "as failed.")
ANY_FORMAT_HELP = ("Open any raster format GDAL / Pillow recognise by content, VRT included (only for trusted "
                   "files: a VRT reads rasters from anywhere). Default: GTiff / PNG / JPEG / WebP / BMP content only.")


def read_options(max_image_mp: Optional[float], any_raster_format: bool):
    """A context in which image files are read with this command's ``--max-image-mp`` / ``--any-raster-format``
    (:class:`geovec.inputs.policy.ReadPolicy`); the process-wide policy is restored afterwards."""
    from dataclasses import replace

    from geovec.inputs.policy import mp_to_pixels, read_policy, reading

    policy = read_policy()
    if max_image_mp is not None:
        policy = replace(policy, max_pixels=mp_to_pixels(max_image_mp))
    if any_raster_format:
        policy = replace(policy, drivers=None)
    return reading(policy)


def parse_bands(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``--bands 4,3,2`` -> (4, 3, 2): 1 or 3 1-based band numbers (a usage error otherwise)."""
    if text is None:
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        bands = ()
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise typer.BadParameter(f"--bands must be 1-based band numbers, 1 or 3 of them (R,G,B) like 4,3,2, got {text!r}")
    return bands


BANDS_HELP = ("1-based band numbers of (Geo)TIFF inputs shown as R,G,B, e.g. 8,4,3 (default: by sensor: B4,B3,B2 of "
              "Sentinel-2 and Landsat 8/9, else the RGB bands, else the first three).")
