"""The interleaved input record and its validation."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from geovec.domain import ITEM_KEYS
from geovec.inputs.errors import GeoVecInputError
from geovec.inputs.bands import BandSelection, check_bands
from geovec.inputs.raster import IMAGE_SUFFIXES, RasterImage, image_size

ALLOWED_KEYS = ITEM_KEYS  # the keys of an item dict (geovec.domain)
# ``Item.order`` holds the modalities (geovec.domain.MODALITIES) in the order the user gave them.

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Item:
    """One thing to embed.

    ``image``: PIL image, (H, W[, C]) array, :class:`RasterImage` or a path (JPEG/PNG/TIFF/GeoTIFF).
    ``boxes``: pixel xyxy boxes in the frame of ``image`` as given (see :mod:`geovec.inputs`).
    ``lat`` / ``lon``: WGS84 degrees. ``instruction``: overrides the call's task instruction.
    A dict's ``bands`` key (1-based band numbers shown as R, G, B, e.g. ``[8, 4, 3]``) makes ``image`` a
    :class:`~geovec.inputs.bands.BandSelection` of the image.
    ``order``: the modalities in the order they appear in the encoder's sequence.
    """

    image: Any = None
    text: str | None = None
    boxes: tuple[Box, ...] = ()
    lat: float | None = None
    lon: float | None = None
    instruction: str | None = None
    order: tuple[str, ...] = field(default=())

    @property
    def has_location(self) -> bool:
        return self.lat is not None

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.order

    def with_instruction(self, instruction: str | None) -> "Item":
        return replace(self, instruction=instruction)

    def content_key(self) -> str:
        """A stable hash of everything that determines the embedding (image content, text, boxes, place,
        instruction). Used by caches: equal keys -> equal embeddings for one model."""
        h = hashlib.sha256()
        h.update(repr((self.text, self.boxes, self.lat, self.lon, self.instruction, self.order)).encode())
        img = self.image
        if img is None:
            h.update(b"<no image>")
        elif isinstance(img, (str, os.PathLike)):
            with open(img, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        elif isinstance(img, BandSelection):
            h.update(repr(img.bands).encode())
            inner = Item(image=img.source, order=("image",)).content_key()
            h.update(inner.encode())
        elif isinstance(img, RasterImage):
            h.update(np.ascontiguousarray(img.pixels).tobytes())
        elif isinstance(img, Image.Image):
            h.update(img.mode.encode() + repr(img.size).encode() + img.tobytes())
        else:
            arr = np.ascontiguousarray(img)
            h.update(str(arr.dtype).encode() + repr(arr.shape).encode() + arr.tobytes())
        return h.hexdigest()


def _is_image_like(x: Any) -> bool:
    return isinstance(x, (Image.Image, np.ndarray, RasterImage, Path, BandSelection))


def _looks_like_image_path(text: str) -> bool:
    """A plain string is text, unless it names an existing image file (``"scene.tif"``); use a dict
    (``{"text": ...}`` / ``{"image": ...}``) or a :class:`pathlib.Path` to say which you mean.
    (The server never does this: there a plain string is always text.)"""
    if len(text) > 4096 or "\n" in text or "\x00" in text or Path(text).suffix.lower() not in IMAGE_SUFFIXES:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # name too long, unencodable: not a file we can read
        return False


def _short(value: Any, limit: int = 80) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _text(value: Any, name: str) -> str:
    """A string that the tokenizer can take: valid Unicode (no lone surrogates), not blank."""
    if not isinstance(value, str):
        raise GeoVecInputError(f"{name} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise GeoVecInputError(f"{name} is not valid Unicode (it holds a lone surrogate)") from None
    if not value.strip():
        raise GeoVecInputError(f"{name} is empty")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)) or isinstance(value, np.complexfloating):
        raise GeoVecInputError(f"{name} must be a number, got {type(value).__name__} {_short(value)}")
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):
        v = math.inf
    if not math.isfinite(v):
        raise GeoVecInputError(f"{name} must be finite, got {_short(value)}")
    return v


def _parse_box(raw: Any) -> Box:
    if (isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray))
            or (isinstance(raw, np.ndarray) and raw.ndim != 1) or len(raw) != 4):
        raise GeoVecInputError(f"box must be 4 numbers [x1, y1, x2, y2] in pixels, got {_short(raw)}")
    x1, y1, x2, y2 = (_number(v, "box coordinate") for v in raw)
    if x2 <= x1 or y2 <= y1:
        raise GeoVecInputError(
            f"box {[x1, y1, x2, y2]} is degenerate: need x1 < x2 and y1 < y2 (pixel xyxy, positive area)"
        )
    return (x1, y1, x2, y2)


def _check_image_source(image: Any) -> None:
    if isinstance(image, BandSelection):
        if isinstance(image.source, (RasterImage, BandSelection)):
            raise GeoVecInputError("bands select bands of a file, PIL image or array; this image is already decoded")
        return _check_image_source(image.source)
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        if isinstance(image, str) and not image.strip():
            raise GeoVecInputError("image path is empty")
        try:
            exists, is_dir = p.exists(), p.is_dir()
        except (OSError, ValueError) as e:  # NUL byte, name too long, unencodable
            raise GeoVecInputError(f"cannot use this image path: {e}", source=_short(str(p))) from None
        if not exists:
            raise GeoVecInputError("image file does not exist", source=str(p))
        if is_dir:
            raise GeoVecInputError("image path is a directory, not a file", source=str(p))
    elif isinstance(image, Image.Image):
        try:
            image.load()  # decode now, in the caller's thread: lazy PIL files are not thread-safe
        except Exception as e:  # Pillow raises many types for malformed data
            raise GeoVecInputError(f"cannot decode image: {e}") from None
    elif not _is_image_like(image):
        raise GeoVecInputError(
            f"image must be a PIL image, numpy array or file path, got {type(image).__name__}"
        )
    elif isinstance(image, np.ndarray) and (image.size == 0 or image.ndim not in (2, 3)):
        raise GeoVecInputError(f"image array must be (H, W) or (H, W, C) and non-empty, got shape {image.shape}")


def _from_dict(d: dict) -> Item:
    unknown = [k for k in d if k not in ALLOWED_KEYS]
    if unknown:
        raise GeoVecInputError(f"unknown key(s) {_short(unknown)}; allowed keys are {list(ALLOWED_KEYS)}")
    if "box" in d and "boxes" in d:
        raise GeoVecInputError("give either 'box' or 'boxes', not both")
    order: list[str] = []
    kw: dict[str, Any] = {}
    for key in d:
        value = d[key]
        if key == "image":
            if value is None:
                continue
            _check_image_source(value)
            kw["image"] = value
            order.append("image")
        elif key == "text":
            if value is None:
                continue
            kw["text"] = _text(value, "text")
            order.append("text")
        elif key in ("box", "boxes"):
            if value is None:
                continue
            if key == "boxes" and (isinstance(value, (str, bytes, dict)) or not isinstance(value, (Sequence, np.ndarray))
                                   or (isinstance(value, np.ndarray) and value.ndim == 0)):
                raise GeoVecInputError(f"'boxes' must be a list of [x1, y1, x2, y2] boxes, got {_short(value)}")
            raw_boxes = [value] if key == "box" else list(value)
            if key == "boxes" and not raw_boxes:
                raise GeoVecInputError("'boxes' is an empty list")
            kw["boxes"] = tuple(_parse_box(b) for b in raw_boxes)
            order.append("box")
        elif key in ("lat", "lon"):
            if "location" not in order and (d.get("lat") is not None or d.get("lon") is not None):
                order.append("location")
        elif key == "bands":
            continue  # applied to the image below
        elif key == "instruction":
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise GeoVecInputError("instruction must be a non-empty string")
            kw["instruction"] = _text(value, "instruction")
    lat, lon = d.get("lat"), d.get("lon")
    if (lat is None) != (lon is None):
        raise GeoVecInputError("give both 'lat' and 'lon' (WGS84 degrees), or neither")
    if lat is not None:
        kw["lat"] = _number(lat, "lat")
        kw["lon"] = _number(lon, "lon")
        if not -90.0 <= kw["lat"] <= 90.0:
            raise GeoVecInputError(f"lat {kw['lat']} is out of range [-90, 90] degrees")
        if not -180.0 <= kw["lon"] <= 180.0:
            raise GeoVecInputError(f"lon {kw['lon']} is out of range [-180, 180] degrees")
    if d.get("bands") is not None:
        if kw.get("image") is None:
            raise GeoVecInputError("'bands' picks bands of the item's image: give an image with it")
        kw["image"] = BandSelection(kw["image"], check_bands(d["bands"]))
        _check_image_source(kw["image"])
    if kw.get("boxes") and kw.get("image") is None:
        raise GeoVecInputError("a box needs an image: boxes are pixel xyxy on the item's image")
    if not order:
        raise GeoVecInputError("empty item: give at least one of image, text, or lat/lon")
    return Item(order=tuple(order), **kw)


def _check_boxes_inside(item: Item) -> None:
    if not item.boxes:
        return
    w, h = image_size(item.image)
    for b in item.boxes:
        x1, y1, x2, y2 = b
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            raise GeoVecInputError(
                f"box {list(b)} lies outside the {w}x{h} image (pixel xyxy, 0 <= x <= width, 0 <= y <= height)"
            )


def parse_item(raw: Any, index: int | None = None) -> Item:
    """One user value -> :class:`Item`, or :class:`GeoVecInputError` naming ``index`` and the problem."""
    try:
        if isinstance(raw, Item):
            item = raw
            if not item.order:
                item = _from_dict({k: v for k, v in (("image", item.image), ("text", item.text),
                                                      ("boxes", list(item.boxes) or None), ("lat", item.lat),
                                                      ("lon", item.lon), ("instruction", item.instruction))})
        elif isinstance(raw, dict):
            item = _from_dict(raw)
        elif isinstance(raw, str):
            if not raw.strip():
                raise GeoVecInputError("empty item: the text is empty")
            if _looks_like_image_path(raw):
                item = Item(image=raw, order=("image",))
            else:
                item = Item(text=_text(raw, "text"), order=("text",))
        elif isinstance(raw, Path):
            _check_image_source(raw)
            item = Item(image=raw, order=("image",))
        elif _is_image_like(raw):
            _check_image_source(raw)
            item = Item(image=raw, order=("image",))
        elif raw is None:
            raise GeoVecInputError("empty item: got None")
        else:
            raise GeoVecInputError(
                f"cannot embed a {type(raw).__name__}; give text, an image, or a dict with keys {list(ALLOWED_KEYS)}"
            )
        if item.text is not None:
            _text(item.text, "text")
        if item.instruction is not None:
            _text(item.instruction, "instruction")
        _check_boxes_inside(item)
        return item
    except GeoVecInputError as e:
        raise e.at(index) from None


def parse_items(raw_items: Iterable[Any]) -> list[Item]:
    """Validate a whole call; raises on the first bad item, naming its index."""
    if isinstance(raw_items, (str, dict, Item, Image.Image, np.ndarray, Path)):
        raise GeoVecInputError("encode takes a list of items; wrap a single item in a list")
    items = [parse_item(r, i) for i, r in enumerate(raw_items)]
    if not items:
        raise GeoVecInputError("no items to embed (empty list)")
    return items
