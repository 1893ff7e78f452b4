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


def _resolve_image(value: Any, base: Path) -> Any:
    if isinstance(value, str) and not Path(value).is_absolute():
        return str(base / value)
    return value


def jsonl_records(path: Path) -> Iterator[Record]:
    """Each non-empty line is a JSON object: the item keys (image paths relative to the file's folder)
    plus optional ``id`` and ``meta``."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rid = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield Record(rid, str(path), None, problem=f"line {lineno} is not valid JSON: {e.msg}")
                continue
            if not isinstance(obj, dict):
                yield Record(rid, str(path), None, problem=f"line {lineno} is not a JSON object")
                continue
            rid = str(obj.get("id", rid))
            meta = obj.get("meta") or {}
            item = {k: v for k, v in obj.items() if k not in RECORD_KEYS}
            if "image" in item:
                item["image"] = _resolve_image(item["image"], path.parent)
            yield Record(rid, str(path), item, meta=meta)


def iter_records(paths: list[Path]) -> Iterator[Record]:
    """Expand files, folders (recursively, sorted) and JSONL files into records, in a stable order."""
    for p in paths:
        if not p.exists():
            yield Record(str(p), str(p), None, problem="path does not exist")
        elif p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    yield Record(str(f), str(f), {"image": str(f)})
                elif f.suffix.lower() == ".jsonl":
                    yield from jsonl_records(f)
        elif p.suffix.lower() == ".jsonl":
            yield from jsonl_records(p)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            yield Record(str(p), str(p), {"image": str(p)})
        else:
            yield Record(str(p), str(p), None, problem=f"unsupported file type {p.suffix!r} (images or .jsonl)")


def is_tiff(value: Any) -> bool:
    return isinstance(value, str) and Path(value).suffix.lower() in TIFF_SUFFIXES
