"""Turning JSON request items into geovec items, with the server's safety limits.

An item is a string (always text: the server never reads a file named by a bare string) or an object with
``text``, ``image``, ``box`` / ``boxes`` (pixel xyxy on the image), ``lat`` / ``lon`` (WGS84 degrees),
``instruction`` and ``bands`` (1-based bands of the image shown as R, G, B). ``image`` is a ``data:image/...;base64,`` URL, ``{"base64": "..."}``, or a file path
(``{"path": "..."}`` or a string that is not a data URL) that must lie inside one of the server's configured
roots. Every image is decoded here, in the request, under the server's limits: its pixels checked from the
header before decoding, its content one of the safe formats (GTiff / PNG / JPEG / WebP / BMP; a ``.tif``
that is a GDAL VRT is refused). URLs are never fetched. Problems raise :class:`GeoVecInputError` naming
the item.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geovec.inputs import GeoVecInputError, Item, parse_item
from geovec.inputs.policy import SAFE_DRIVERS
from geovec.inputs.raster import RasterImage, read_image

# Pillow plugins a base64 image may be decoded with (the same safe set as files)
PIL_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF")


@dataclass
class Limits:
    """Per-request limits: body bytes, items per request, decoded image pixels (width x height) per image
    and per request, results."""

    max_request_bytes: int = 16 * 1024 * 1024
    max_items: int = 256
    max_image_pixels: int = 64 * 1024 * 1024 // 3  # ~22 MP of 8-bit RGB
    max_request_pixels: int | None = None  # all images of one request together; None = 4 x max_image_pixels
    max_k: int = 200
    roots: list[Path] = field(default_factory=list)  # folders whose files requests may name
    # a text longer than this many characters per token of the model's reading length is refused (or cut)
    # without tokenising it: no tokenizer's token covers more on real text, and it bounds the tokenising work
    max_chars_per_token: int = 16

    @property
    def request_pixels(self) -> int:
        return self.max_request_pixels if self.max_request_pixels is not None else 4 * self.max_image_pixels


class PixelBudget:
    """Decoded pixels left for the images of one request."""

    def __init__(self, limits: Limits):
        self.left = limits.request_pixels
        self.total = limits.request_pixels

    def take(self, width: int, height: int) -> None:
        if width * height > self.left:
            raise GeoVecInputError(f"the images of this request decode to more than {self.total} pixels in total; "
                                   "send fewer or smaller images per request")
        self.left -= width * height


def _check_pixels(width: int, height: int, limits: Limits, budget: PixelBudget | None = None) -> None:
    if width * height > limits.max_image_pixels:
        raise GeoVecInputError(f"image is {width}x{height} = {width * height} pixels; this server accepts at most "
                               f"{limits.max_image_pixels} pixels per image")
    if budget is not None:
        budget.take(width, height)


def decode_base64_image(data: str, limits: Limits, budget: PixelBudget | None = None) -> np.ndarray:
    """Base64 (optionally a data URL) -> (H, W, 3) uint8, checking the size from the header before decoding."""
    from PIL import Image

    from geovec.inputs.raster import pil_pixels

    if not isinstance(data, str):
        raise GeoVecInputError(f"image base64 must be a string, got {type(data).__name__}")
    if data.startswith("data:"):
        head, _, data = data.partition(",")
        if ";base64" not in head:
            raise GeoVecInputError("image data URL must be base64-encoded (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise GeoVecInputError("image is not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the server's own limit applies
            with Image.open(io.BytesIO(raw), formats=PIL_FORMATS) as im:
                _check_pixels(im.width, im.height, limits, budget)
                im.load()
                pixels = pil_pixels(im)
    except GeoVecInputError:
        raise
    except Image.DecompressionBombError as e:
        raise GeoVecInputError(f"image is too large to decode (decompression bomb guard): {e}") from None
    except MemoryError:
        raise GeoVecInputError("not enough memory to decode the image") from None
    except Exception as e:  # Pillow raises many types for malformed data
        raise GeoVecInputError(f"cannot decode base64 image: {e}") from None
    if pixels.size == 0:
        raise GeoVecInputError("image is empty (0 pixels)")
    return pixels


def resolve_path(name: str, limits: Limits) -> Path:
    """A requested file path, allowed only inside the configured roots (after resolving ``..`` and links)."""
    if not limits.roots:
        raise GeoVecInputError("this server does not read files by path (start it with --root DIR); send the "
                               "image as base64 instead")
    if not isinstance(name, str) or not name.strip():
        raise GeoVecInputError("image path must be a non-empty string")
    if "\x00" in name:
        raise GeoVecInputError("image path contains a NUL byte")
    try:
        name.encode("utf-8")
        p = Path(name)
        for root in limits.roots:
            root = root.resolve()
            candidate = (root / p).resolve() if not p.is_absolute() else p.resolve()
            if candidate.is_relative_to(root):
                if not candidate.is_file():
                    raise GeoVecInputError(f"image file {name!r} does not exist under the server's roots")
                return candidate
    except (OSError, ValueError, RuntimeError) as e:  # name too long, symlink loop, unencodable
        if isinstance(e, GeoVecInputError):
            raise
        raise GeoVecInputError(f"image path {name!r} cannot be used: {type(e).__name__}") from None
    raise GeoVecInputError(f"image path {name!r} is outside the server's allowed roots")


def _image(value: Any, limits: Limits, budget: PixelBudget | None = None, bands: Any = None) -> Any:
    from geovec.inputs.bands import check_bands, select_bands
    from geovec.inputs.raster import image_size

    if bands is not None:  # an item's "bands": picked from the file (or the decoded array) here
        bands = check_bands(bands)
        pixels = _image(value, limits, budget) if not _is_path(value) else None
        if pixels is not None:
            return select_bands(pixels, bands)

    if isinstance(value, dict):
        keys = set(value)
        if keys == {"base64"}:
            return decode_base64_image(value["base64"], limits, budget)
        if keys == {"path"}:
            value = value["path"]
            if not isinstance(value, str):
                raise GeoVecInputError(f"image path must be a string, got {type(value).__name__}")
        elif keys & {"url", "image_url"}:
            raise GeoVecInputError("image URLs are not fetched by this server; send base64 or a path under its roots")
        else:
            raise GeoVecInputError(f"image object needs exactly one of 'base64' or 'path', got keys "
                                   f"{sorted(map(repr, keys))}")
    elif not isinstance(value, str):
        raise GeoVecInputError(f"image must be a base64 data URL, {{'base64': ...}} or a path, got {type(value).__name__}")
    if value.startswith("data:"):
        return decode_base64_image(value, limits, budget)
    if value.startswith(("http://", "https://", "s3://", "gs://", "/vsi")):
        raise GeoVecInputError("image URLs are not fetched by this server; send base64 or a path under its roots")
    path = resolve_path(value, limits)
    w, h = image_size(path, drivers=SAFE_DRIVERS)
    _check_pixels(w, h, limits, budget)
    # decoded here, with the server's own limits: never by a library guessing the format from the content
    return read_image(path, bands=bands, max_pixels=limits.max_image_pixels, drivers=SAFE_DRIVERS)


def _is_path(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"path"}
    return isinstance(value, str) and not value.startswith("data:")


def to_item(raw: Any, index: int, limits: Limits, budget: PixelBudget | None = None) -> Item:
    """One JSON request item -> a parsed :class:`Item`; GeoVecInputError names ``index``.

    A string is always text (never a file name). Images are decoded here under ``limits`` (and ``budget``,
    the pixels left for the whole request)."""
    try:
        if isinstance(raw, str):
            return parse_item({"text": raw})
        if isinstance(raw, list) and raw and all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
            raise GeoVecInputError("token-id arrays are not supported; send text")
        if not isinstance(raw, dict):
            raise GeoVecInputError(f"an item must be a string or an object, got {type(raw).__name__}")
        item = dict(raw)
        if item.get("image") is not None:
            item["image"] = _image(item["image"], limits, budget, item.pop("bands", None))
        return parse_item(item)
    except GeoVecInputError as e:
        raise e.at(index) from None


def image_of(raw: Any, limits: Limits) -> np.ndarray | RasterImage:
    """A search request's ``image`` value, decoded under ``limits``."""
    return _image(raw, limits, PixelBudget(limits))


class InputTooLong(GeoVecInputError):
    """A text longer than the model reads (a 400 ``context_length_exceeded``, as OpenAI answers); ``param``: the
    request field it came from."""

    def __init__(self, problem: str, index: int | None = None, param: str = "input"):
        super().__init__(problem, index=index)
        self.param = param


def reading_length(model) -> tuple[int | None, int | None]:
    """(text tokens, instruction tokens) the model reads per item: the most any of its text paths reads (a
    dual-path model's global text path may read more than its encoder), ``None`` when it does not say."""
    cfg = getattr(model, "config", None)
    text = getattr(cfg, "max_text_tokens", None)
    settings = getattr(model, "settings", None)
    if isinstance(settings, dict) and settings.get("max_text_tokens"):
        text = max(int(text or 0), int(settings["max_text_tokens"]))
    instr = getattr(cfg, "max_instruction_tokens", None)
    return (int(text) if text else None), (int(instr) if instr else None)


def tokenizer_of(model):
    return getattr(getattr(model, "backbone", None), "tokenizer", None) or getattr(model, "tokenizer", None)


def n_tokens(tokenizer, text: str) -> int:
    """Tokens of ``text`` without special tokens (whitespace words for a model without a tokenizer)."""
    if tokenizer is None:
        return len(text.split())
    # verbose=False: a text over the tokenizer's own maximum is expected here (it is being measured)
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def bounded_text(text: str, max_tokens: int | None, tokenizer, limits: Limits, truncate: bool, what: str) -> str:
    """``text`` if it fits the model's reading length of ``max_tokens`` tokens. Longer: with ``truncate`` the
    part the model reads (its first ``max_tokens`` tokens; the model cuts the rest itself), else
    :class:`InputTooLong`. Never tokenises more than ``max_tokens * limits.max_chars_per_token`` characters:
    a longer text is refused (or cut to that many characters) on its length alone."""
    if max_tokens is None or len(text) <= max_tokens:  # a token covers at least one character
        return text
    max_chars = max_tokens * limits.max_chars_per_token
    if len(text) > max_chars:
        if not truncate:
            raise InputTooLong(f"{what} is {len(text)} characters: more than this model reads ({max_tokens} tokens; "
                               f"longer than {max_chars} characters is refused without counting). Send a shorter "
                               f"text, or \"truncate\": true to embed its first {max_tokens} tokens", param=what)
        text = text[:max_chars]
    n = n_tokens(tokenizer, text)
    if n > max_tokens and not truncate:
        raise InputTooLong(f"{what} has {n} tokens: this model reads at most {max_tokens} tokens per input. Send a "
                           f"shorter text, or \"truncate\": true to embed its first {max_tokens} tokens", param=what)
    return text


def bound_items(items: list[Item], model, limits: Limits, truncate: bool) -> list[Item]:
    """The items with each text and instruction checked (or cut) by :func:`bounded_text`; errors name the item."""
    from dataclasses import replace

    text_max, instr_max = reading_length(model)
    tok = tokenizer_of(model)
    out = []
    for i, it in enumerate(items):
        try:
            text = bounded_text(it.text, text_max, tok, limits, truncate, "text") if it.text else it.text
            instr = (bounded_text(it.instruction, instr_max, tok, limits, truncate, "instruction")
                     if it.instruction else it.instruction)
        except InputTooLong as e:
            raise InputTooLong(e.problem, index=i) from None
        out.append(it if (text is it.text and instr is it.instruction) else replace(it, text=text, instruction=instr))
    return out
