"""Geo pairs from georeferenced imagery: image <-> location, and (text + location) -> (image + location).

Places are chips of GeoTIFF scenes with their own centre lat/lon and a description of the imagery, from
:func:`geovec.data.geo.geo_places`: the chips and the spatially held-out split the benchmark's geo tasks use.
Training takes ``split="train"`` (scenes outside the held-out blocks and away from them), with the split seed of
the rsmeb-dev geo tasks (:data:`GEO_SPLIT_SEED`), so no training chip lies in or beside an evaluation block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from geovec.train.data import Example

GEO_SPLIT_SEED = 0  # geovec.data.geo.spatial_split seed of the rsmeb-dev geo tasks (geovec bench's default seed)
DEFAULT_TEXT = "a remote sensing image"


def train_places(data_root: str | Path, cache_dir: str | Path, seed: int = GEO_SPLIT_SEED) -> list[dict]:
    """The training chips of every georeferenced source under ``data_root`` (``geo_places(split="train")``),
    rendered under ``cache_dir``."""
    from geovec.data.geo import geo_places

    return geo_places(data_root, "train", cache_dir=Path(cache_dir).absolute(), seed=seed)


def geo_examples(places: Sequence[dict]) -> Iterator[Example]:
    """image -> location, and (text + location) -> (image + location), per place (dicts with ``image``, ``lat``,
    ``lon`` and optionally ``text`` describing the imagery, as :func:`geovec.data.geo.geo_places` gives)."""
    for p in places:
        image = str(Path(p["image"]).absolute())
        loc = {"lat": float(p["lat"]), "lon": float(p["lon"])}
        yield Example("geo", {"image": image}, [dict(loc)], group=image)
        yield Example("geo", {"text": p.get("text") or DEFAULT_TEXT, **loc}, [{"image": image, **loc}], group=image)
