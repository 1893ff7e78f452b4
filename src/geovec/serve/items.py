"""Turning JSON request items into geovec items, with the server's safety limits.

An item is a string (text) or an object with ``text``, ``image``, ``box`` / ``boxes`` (pixel xyxy on the
image), ``lat`` / ``lon`` (WGS84 degrees) and ``instruction``. ``image`` is a ``data:image/...;base64,``
URL, ``{"base64": "..."}``, or a file path (string or ``{"path": "..."}``) that must lie inside one of the
server's configured roots. URLs are never fetched. Problems raise :class:`GeoVecInputError` naming the item.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geovec.inputs import GeoVecInputError


@dataclass
class Limits:
    """Per-request limits: body bytes, items per request, decoded image pixels (width x height), results."""

    max_request_bytes: int = 16 * 1024 * 1024
    max_items: int = 256
    max_image_pixels: int = 64 * 1024 * 1024 // 3  # ~22 MP of 8-bit RGB
    max_k: int = 200
    roots: list[Path] = field(default_factory=list)  # folders whose files requests may name


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_image_pixels:
        raise GeoVecInputError(f"image is {width}x{height} = {width * height} pixels; this server accepts at most "
                               f"{limits.max_image_pixels} pixels per image")


def decode_base64_image(data: str, limits: Limits) -> np.ndarray:
    """Base64 (optionally a data URL) -> (H, W, 3) uint8, checking the size from the header before decoding."""
    from PIL import Image, UnidentifiedImageError

    if data.startswith("data:"):
        head, _, data = data.partition(",")
        if ";base64" not in head:
            raise GeoVecInputError("image data URL must be base64-encoded (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise GeoVecInputError("image is not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw)) as im:
            _check_pixels(im.width, im.height, limits)
            im.load()
            return np.asarray(im.convert("RGB"))
    except GeoVecInputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise GeoVecInputError(f"cannot decode base64 image: {e}") from None


def resolve_path(name: str, limits: Limits) -> Path:
    """A requested file path, allowed only inside the configured roots (after resolving ``..`` and links)."""
    if not limits.roots:
        raise GeoVecInputError("this server does not read files by path (start it with --root DIR); send the "
                               "image as base64 instead")
    if "\x00" in name:
        raise GeoVecInputError("image path contains a NUL byte")
    p = Path(name)
    for root in limits.roots:
        root = root.resolve()
        candidate = (root / p).resolve() if not p.is_absolute() else p.resolve()
        if candidate.is_relative_to(root):
            if not candidate.is_file():
                raise GeoVecInputError(f"image file {name!r} does not exist under the server's roots")
            return candidate
    raise GeoVecInputError(f"image path {name!r} is outside the server's allowed roots")


def _image(value: Any, limits: Limits) -> Any:
    from geovec.inputs.raster import image_size

    if isinstance(value, dict):
        keys = set(value)
        if keys == {"base64"}:
            return decode_base64_image(str(value["base64"]), limits)
        if keys == {"path"}:
            value = str(value["path"])
        elif keys & {"url", "image_url"}:
            raise GeoVecInputError("image URLs are not fetched by this server; send base64 or a path under its roots")
        else:
            raise GeoVecInputError(f"image object needs exactly one of 'base64' or 'path', got keys {sorted(keys)}")
    elif not isinstance(value, str):
        raise GeoVecInputError(f"image must be a base64 data URL, {{'base64': ...}} or a path, got {type(value).__name__}")
    if value.startswith("data:"):
        return decode_base64_image(value, limits)
    if value.startswith(("http://", "https://", "s3://", "gs://")):
        raise GeoVecInputError("image URLs are not fetched by this server; send base64 or a path under its roots")
    path = resolve_path(value, limits)
    w, h = image_size(path)
    _check_pixels(w, h, limits)
    return str(path)


def to_item(raw: Any, index: int, limits: Limits) -> Any:
    """One JSON request item -> a value ``model.encode`` accepts; GeoVecInputError names ``index``."""
    try:
        if isinstance(raw, str):
            if not raw.strip():
                raise GeoVecInputError("text is empty")
            return raw
        if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
            raise GeoVecInputError("token-id arrays are not supported; send text")
        if not isinstance(raw, dict):
            raise GeoVecInputError(f"an item must be a string or an object, got {type(raw).__name__}")
        item = dict(raw)
        if item.get("image") is not None:
            item["image"] = _image(item["image"], limits)
        return item
    except GeoVecInputError as e:
        raise e.at(index) from None
