"""Which bands of a raster are red, green and blue, and the fixed display scale of a known sensor
(:func:`detect_product`); band selection by the user (``bands``, :class:`BandSelection`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geovec.inputs.errors import GeoVecInputError
from geovec.inputs.policy import FROM_POLICY, open_raster, resolve_policy

# Sentinel-2 L1C / L2A digital numbers are reflectance x 10,000 (no offset is applied: processing baseline 04.00+
# L2A products add 1000, which darkens them a little). True colour shows reflectance 0-0.3 as 0-255, so
# DN 0-3000: one fixed scale for every chip of every Sentinel-2 product (also the benchmark's geo chips,
# geovec.data.geo). Landsat 8/9 Collection 2 uses its own fixed per-level scale and offset, to the same 0-0.3.
S2_QUANTIFICATION = 10_000.0  # Sentinel-2 DN per unit reflectance
TRUE_COLOUR_MAX_REFLECTANCE = 0.3  # reflectance shown as 255 in true colour (brighter saturates)
TRUE_COLOUR_MAX_DN = 3000.0  # = S2_QUANTIFICATION * TRUE_COLOUR_MAX_REFLECTANCE: Sentinel-2 DN shown as 255

S2_L1C_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S2_L2A_BANDS = tuple(b for b in S2_L1C_BANDS if b != "B10")  # 12 bands: L2A has no cirrus band
S2_10_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")  # the 10 m + 20 m bands (So2Sat)
S2_BAND_ORDERS = {13: S2_L1C_BANDS, 12: S2_L2A_BANDS, 10: S2_10_BANDS}
# Landsat 8/9 Collection 2: reflectance = DN * scale + offset (the same for every scene of a level)
LANDSAT_SCALE = {"L2": (2.75e-5, -0.2), "L1": (2.0e-5, -0.1)}
# sensor band names (B4, B04, B8A, SR_B4, B04_10m), not generic numbering ("Band 4" of a NAIP R,G,B,NIR file)
_BAND_NAME = re.compile(r"^(?:(?:SR|TOA)_)?B0?(\d{1,2}A?)(?![0-9A-Z])")


@dataclass(frozen=True)
class RasterProduct:
    """What a raster file is, for display: ``rgb`` the 1-based bands shown as R, G, B, ``sensor`` (None when not
    recognised), ``scale`` the fixed DN range ``(lo, hi)`` shown as 0-255 for a known sensor (None: one
    2-98 % stretch is computed per raster from its overviews or a sample), ``how`` what it was recognised by."""

    rgb: tuple[int, ...]
    sensor: str | None = None
    scale: tuple[float, float] | None = None
    how: str = "default"


def _band_names(ds) -> list[str | None]:
    """Normalised band names from the band descriptions (``B04``, ``B4``, ``SR_B4``, ``B8A``, ``red``...)."""
    names = []
    for d in ds.descriptions:
        text = (d or "").strip().upper()
        m = _BAND_NAME.match(text)
        if m:
            names.append("B" + m.group(1))
        elif text in ("RED", "GREEN", "BLUE", "NIR"):
            names.append(text)
        else:
            names.append(None)
    return names


def _landsat_level(ds, path) -> str | None:
    """``"L1"`` / ``"L2"`` for a Landsat 8/9 product (by its tags, band descriptions or product-id file name)."""
    text = " ".join([Path(str(path)).name.upper()] + [f"{k}={v}".upper() for k, v in ds.tags().items()]
                    + [(d or "").upper() for d in ds.descriptions])
    if not (re.search(r"\bL[COT]0?[89]_", text) or re.search(r"LANDSAT[ _-]?[89]", text)):
        return None
    return "L2" if re.search(r"L2S[PR]|\bSR_B|_SR\b|SURFACE_REFLECTANCE", text) else "L1"


def _is_sentinel2(ds, path) -> bool:
    text = " ".join([Path(str(path)).name.upper()] + [f"{k}={v}".upper() for k, v in ds.tags().items()])
    return bool(re.search(r"SENTINEL[ _-]?2|\bS2[ABC]?_?MSI|\bS2[ABC]_", text))


def detect_product(ds, path: str | os.PathLike | None = None) -> RasterProduct:
    """The RGB bands and scaling of an open rasterio dataset (header only, no pixels read).

    In order: band descriptions naming B4 / B3 / B2 (Sentinel-2 and Landsat 8/9 both call red, green, blue
    so) or red / green / blue; RGB colour interpretation; a Sentinel-2 band order from the band count of an
    integer raster (13 = L1C, 12 = L2A without B10, 10 = the 10 m + 20 m bands B2-B8A, B11, B12); a Landsat 8/9
    product (tags or file name; band n = Bn); else the first three bands (or one grey band). Sentinel-2 and
    Landsat integer products get their fixed reflectance scale; anything else is stretched once per raster."""
    from rasterio.enums import ColorInterp

    dtype = np.dtype(ds.dtypes[0])
    integer = np.issubdtype(dtype, np.integer) and dtype.itemsize > 1  # digital numbers (8-bit data is shown as is)
    names = _band_names(ds)
    landsat = _landsat_level(ds, path)
    s2 = landsat is None and (_is_sentinel2(ds, path) or "B8A" in names)
    rgb, how = None, None
    for wanted in (("B4", "B3", "B2"), ("RED", "GREEN", "BLUE")):
        if all(w in names for w in wanted):
            rgb, how = tuple(names.index(w) + 1 for w in wanted), "band descriptions"
            break
    interp = list(ds.colorinterp)
    if rgb is None and all(c in interp for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)):
        rgb = tuple(interp.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue))
        how = "colour interpretation"
    if rgb is None and landsat is not None and ds.count >= 4:
        rgb, how = (4, 3, 2), f"Landsat 8/9 {landsat} band order"
    if rgb is None and landsat is None and integer and ds.count in S2_BAND_ORDERS:
        order = S2_BAND_ORDERS[ds.count]
        rgb, how, s2 = tuple(order.index(b) + 1 for b in ("B4", "B3", "B2")), f"Sentinel-2 {ds.count}-band order", True
    if rgb is None:
        rgb, how = ((1, 2, 3), "first three bands") if ds.count >= 3 else ((1,), "one grey band")
    sensor = scale = None
    if landsat is not None:
        sensor = f"Landsat 8/9 {landsat}"
        if integer:
            k, offset = LANDSAT_SCALE[landsat]
            scale = ((0.0 - offset) / k, (TRUE_COLOUR_MAX_REFLECTANCE - offset) / k)
    elif s2:
        sensor = {13: "Sentinel-2 L1C", 12: "Sentinel-2 L2A"}.get(ds.count, "Sentinel-2")
        if integer:
            scale = (0.0, TRUE_COLOUR_MAX_DN)
    return RasterProduct(rgb=rgb, sensor=sensor, scale=scale, how=how)


def describe_raster(path: str | os.PathLike, drivers=FROM_POLICY) -> RasterProduct:
    """:func:`detect_product` of a file: which bands it shows as RGB and how it is scaled."""
    _, drivers = resolve_policy(FROM_POLICY, drivers)
    with open_raster(path, drivers) as ds:
        return detect_product(ds, path)


def check_bands(bands, count: int | None = None) -> tuple[int, ...]:
    """``bands`` as a tuple of 1-based band numbers (a list / tuple of positive ints), each <= ``count``."""
    if isinstance(bands, (str, bytes)) or not isinstance(bands, (list, tuple, np.ndarray)) or not len(bands):
        raise GeoVecInputError(f"bands must be a list of 1-based band numbers like [4, 3, 2], got {bands!r}"[:200])
    out = []
    for b in bands:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, np.integer)) or b < 1:
            raise GeoVecInputError(f"bands must be 1-based band numbers (integers >= 1), got {list(bands)!r}"[:200])
        if count is not None and b > count:
            raise GeoVecInputError(f"band {int(b)} requested but the raster has {count} band(s)")
        out.append(int(b))
    if len(out) not in (1, 3):
        raise GeoVecInputError(f"bands picks 1 (grey) or 3 (R, G, B) bands, got {len(out)}: {out}")
    return tuple(out)


@dataclass(frozen=True)
class BandSelection:
    """An image with the bands to show as R, G, B (1-based), what an item's ``bands`` key makes of its image:
    ``{"image": "scene.tif", "bands": [8, 4, 3]}``. Read lazily, like a path (:func:`geovec.inputs.raster.read_image`)."""

    source: Any
    bands: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "bands", check_bands(self.bands))


def select_bands(array: np.ndarray, bands: tuple[int, ...] | None) -> np.ndarray:
    """Bands (1-based) of an (H, W[, C]) array."""
    if not bands:
        return array
    a = array[..., None] if array.ndim == 2 else array
    check_bands(bands, a.shape[2])
    return a[..., [b - 1 for b in bands]]
