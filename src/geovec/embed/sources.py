"""Turning command-line paths (image files, folders, GeoTIFFs, JSONL files of items) into embeddable records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from geovec.inputs.raster import IMAGE_SUFFIXES, TIFF_SUFFIXES

# keys a JSONL line may carry besides the item keys; they describe the record, they are not embedded
RECORD_KEYS = ("id", "meta")


@dataclass
class Record:
    """One thing to embed plus what the output row says about it."""

    id: str
    source: str
    item: Any  # value accepted by geovec.inputs.parse_item; None when the record itself is broken
    problem: str | None = None  # set when the record could not even be formed (bad JSON line)
    meta: dict = field(default_factory=dict)
    line: int | None = None  # line number of a JSONL record


def _resolve_image(value: Any, base: Path) -> Any:
    if isinstance(value, str) and not Path(value).is_absolute():
        return str(base / value)
    return value


def jsonl_records(path: Path) -> Iterator[Record]:
    """Each non-empty line is a JSON object: the item keys (image paths relative to the file's folder)
    plus optional ``id`` and ``meta``."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            rid = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Record(rid, str(path), None, problem=f"line {lineno} is not valid UTF-8", line=lineno)
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as e:  # JSONDecodeError, too many digits, nested too deep
                why = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
                yield Record(rid, str(path), None, problem=f"line {lineno} is not valid JSON: {why}", line=lineno)
                continue
            if not isinstance(obj, dict):
                yield Record(rid, str(path), None, problem=f"line {lineno} is not a JSON object", line=lineno)
                continue
            if "id" in obj and (obj["id"] is None or isinstance(obj["id"], (dict, list, bool))):
                yield Record(rid, str(path), None, line=lineno,
                             problem=f"line {lineno}: id must be a string or a number, got {obj['id']!r}")
                continue
            rid = str(obj.get("id", rid))
            meta = obj.get("meta") or {}
            item = {k: v for k, v in obj.items() if k not in RECORD_KEYS}
            if "image" in item:
                item["image"] = _resolve_image(item["image"], path.parent)
            yield Record(rid, str(path), item, meta=meta, line=lineno)


def _expand(paths: list[Path]) -> Iterator[Record]:
    """Files, folders (recursively, sorted) and JSONL files -> records, in a stable order; a file reached
    twice (listed twice, or listed and inside a listed folder, under any spelling) is expanded once."""
    seen_files: set[str] = set()

    def first_time(f: Path) -> bool:
        try:
            key = str(f.resolve())
        except (OSError, RuntimeError):
            key = str(f)
        if key in seen_files:
            return False
        seen_files.add(key)
        return True

    for p in paths:
        if not p.exists():
            yield Record(str(p), str(p), None, problem="path does not exist")
        elif p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if f.suffix.lower() in IMAGE_SUFFIXES and first_time(f):
                    yield Record(str(f), str(f), {"image": str(f)})
                elif f.suffix.lower() == ".jsonl" and first_time(f):
                    yield from jsonl_records(f)
        elif not first_time(p):
            continue
        elif p.suffix.lower() == ".jsonl":
            yield from jsonl_records(p)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            yield Record(str(p), str(p), {"image": str(p)})
        else:
            yield Record(str(p), str(p), None, problem=f"unsupported file type {p.suffix!r} (images or .jsonl)")


def iter_records(paths: list[Path]) -> Iterator[Record]:
    """Expand files, folders (recursively, sorted) and JSONL files into records, in a stable order.

    Ids are unique: the same file given twice is one record, and a record whose ``id`` was already used
    (a JSONL ``id`` repeated, in one file or across files) becomes a failed record naming both places, keyed
    by its own ``file:line`` so the first one keeps the id.
    """
    where: dict[str, str] = {}
    for r in _expand(paths):
        here = r.source + (f":{r.line}" if r.line else "")
        if r.id in where:
            yield Record(here if here not in where else f"{here}#dup", r.source, None,
                         problem=f"id {r.id!r} is already used by {where[r.id]}; ids must be unique "
                                 "(this line was not embedded)")
            continue
        where[r.id] = here
        yield r


def is_tiff(value: Any) -> bool:
    return isinstance(value, str) and Path(value).suffix.lower() in TIFF_SUFFIXES
