"""A folder of georeferenced GeoTIFFs (any CRS): each file is one place on Earth.

The georeference comes from the file itself (:func:`geovec.inputs.georef.read_georef`): the footprint's
centre in WGS84 degrees is the image's location. Files without a usable georeference are reported, not
guessed. ``split`` selects ids: ``"all"``, or the RSMEB convention for folders without an official split
(numeric file names): ``"eval"`` = ids divisible by 5, ``"train"`` = the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from geovec.data.base import Dataset
from geovec.inputs.georef import read_georef
from geovec.inputs.raster import TIFF_SUFFIXES


def _id_key(stem: str):
    return (0, int(stem), stem) if stem.isdigit() else (1, 0, stem)


class GeoTiffFolder(Dataset):
    """Samples: ``{"image": Path, "id": file stem, "lat", "lon" (footprint centre, degrees),
    "footprint": ((lon, lat), ...), "crs"}``."""

    name = "GeoTIFF folder"
    url = "any georeferenced imagery (e.g. RSVQA Images_LR/Data, fMoW, Sentinel-2 tiles)"
    layout = "<root>/<image_dir>/<id>.tif, georeferenced GeoTIFFs (CRS + geotransform in the file)"
    splits = ("all", "eval", "train")
    image_dir: ClassVar[str] = ""

    def __init__(self, root, split: str = "all", transforms=None, image_dir: str | None = None):
        if image_dir is not None:
            self.image_dir = image_dir
        super().__init__(root, split, transforms)

    def _files(self):
        folder = self.root / self.image_dir
        return sorted((p for p in folder.iterdir() if p.suffix.lower() in TIFF_SUFFIXES), key=lambda p: _id_key(p.stem))

    def _verify(self) -> None:
        folder = self.root / self.image_dir
        if not folder.is_dir():
            raise self.missing_error(f"folder {self.image_dir or '.'} does not exist")
        if not self._files():
            raise self.missing_error(f"no .tif files in {self.image_dir or '.'}")

    def _selected(self, stem: str) -> bool:
        if self.split == "all":
            return True
        if not stem.isdigit():
            raise ValueError(f"split {self.split!r} needs numeric file names (ids); got {stem!r}")
        return (int(stem) % 5 == 0) == (self.split == "eval")

    def _load(self) -> list[dict[str, Any]]:
        out, no_georef = [], []
        for path in self._files():
            if not self._selected(path.stem):
                continue
            g = read_georef(path)
            if g is None:
                no_georef.append(path.name)
                continue
            out.append({"image": path, "id": path.stem, "lat": g.centre_lat, "lon": g.centre_lon,
                        "footprint": g.footprint, "crs": g.crs})
        if no_georef:
            raise self.missing_error(f"{len(no_georef)} file(s) carry no georeference (e.g. {no_georef[0]})")
        return out


class RSVQALRImages(GeoTiffFolder):
    """The RSVQA-LR Sentinel-2 tiles as a GeoTIFF folder (256x256 px, 10 m, EPSG:3857)."""

    name = "RSVQA-LR images"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344334)"
    layout = "<root>/Images_LR/<id>.tif (georeferenced)"
    image_dir = "Images_LR"


class RSVQAHRImages(GeoTiffFolder):
    """The RSVQA-HR USGS orthophotos as a GeoTIFF folder (512x512 px, EPSG:3857)."""

    name = "RSVQA-HR images"
    url = "https://rsvqa.sylvainlobry.com/ (Zenodo record 6344367)"
    layout = "<root>/Data/<id>.tif (georeferenced)"
    image_dir = "Data"
