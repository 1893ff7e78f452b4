"""Interleaved inputs: what a user hands to ``encode`` and how it is checked.

An *item* is one thing to embed: any combination of an image, text, bounding boxes on that image and a
geographic point, plus an optional instruction. Users pass plain values (``str`` -> text, PIL image / ndarray /
path -> image) or dicts with the keys in :data:`ALLOWED_KEYS`; :func:`parse_items` turns them into
:class:`Item` records or raises :class:`GeoVecInputError` naming the item index and the problem.

Frames and units
----------------
* Boxes are **pixel xyxy in the frame of the image as given** (``x1, y1`` top-left corner, ``x2, y2``
  bottom-right corner, ``0 <= x1 < x2 <= width``, ``0 <= y1 < y2 <= height``), never normalised.
* Coordinates are named ``lat`` / ``lon`` in WGS84 degrees; there is no positional (lat, lon) pair anywhere.

Reading files
-------------
Files are opened by content, only as GTiff / PNG / JPEG / WebP / BMP, and an image read whole may have at most
100 megapixels (checked from the header); :func:`set_read_policy` / :func:`reading` change both
(:class:`ReadPolicy`). Decompression bombs, too-large and all-NaN rasters raise :class:`GeoVecInputError`.
"""

from geovec.inputs.errors import GeoVecInputError
from geovec.inputs.item import ALLOWED_KEYS, Item, parse_item, parse_items
from geovec.inputs.georef import GeoRef
from geovec.inputs.policy import ReadPolicy, read_policy, reading, set_read_policy
from geovec.inputs.raster import RasterImage, read_image

__all__ = [
    "ALLOWED_KEYS",
    "GeoRef",
    "GeoVecInputError",
    "Item",
    "RasterImage",
    "ReadPolicy",
    "parse_item",
    "parse_items",
    "read_image",
    "read_policy",
    "reading",
    "set_read_policy",
]
