"""Scene-classification datasets in class-folder layouts: UCM, AID, PatternNet, RESISC45, WHU-RS19, Million-AID,
and the NWPU-RESISC12 subset of ``shared/data``.

Each is a :class:`ClassFolderDataset`: ``<root>/<base_dir>/<class>/<image>``; the folder name is the native
class name, its prompt name comes from the shared table :mod:`geovec.data.classnames`. None of the first five
has an official train/test split, so their split is ``"all"`` (the RSMEB zero-shot protocol evaluates on every
image). Million-AID ships ``train``/``test`` folders with a class hierarchy whose leaf folder is the class; only
``train`` is labelled in the public release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from geovec.data.base import Dataset, prompt_name


def leaf_folders(root: Path) -> list[Path]:
    """The folders below ``root`` (any depth) that hold no folder: in a nested class layout, the classes."""
    leaves = [p for p in root.rglob("*") if p.is_dir() and not any(c.is_dir() for c in p.iterdir())]
    return sorted(leaves, key=lambda p: p.name)


class ClassFolderDataset(Dataset):
    """``<root>/<base_dir>/<class>/<file>``; subclasses set the facts as class attributes.

    Samples: ``{"image": Path, "label": int, "class_name": native name, "prompt_name": words for prompts}``.
    ``classes`` (when known) lists the official classes; a release missing any of them is reported as partial.
    """

    base_dir: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
    classes: ClassVar[tuple[str, ...]] = ()

    @property
    def image_root(self) -> Path:
        return self.root / self.base_dir

    def _class_dirs(self) -> list[Path]:
        return sorted(p for p in self.image_root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _images_in(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in self.extensions)

    def _verify(self) -> None:
        if not self.image_root.is_dir():
            raise self.missing_error(f"folder {self.base_dir or '.'} does not exist")
        found = {d.name for d in self._class_dirs() if self._images_in(d)}
        if not found:
            raise self.missing_error(f"no class folders with images in {self.base_dir or '.'}")
        missing = [c for c in self.classes if c not in found]
        if missing:
            raise self.missing_error(
                f"partial release: {len(missing)} of {len(self.classes)} class folders missing or empty "
                f"({', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''})"
            )

    def _load(self) -> list[dict[str, Any]]:
        dirs = [d for d in self._class_dirs() if self._images_in(d)]
        self.class_names = [d.name for d in dirs]
        self.prompt_names = [prompt_name(c) for c in self.class_names]
        samples = []
        for label, d in enumerate(dirs):
            for path in self._images_in(d):
                samples.append({"image": path, "label": label, "class_name": d.name,
                                "prompt_name": self.prompt_names[label]})
        return samples


class UCMerced(ClassFolderDataset):
    """UC Merced Land Use: 21 classes x 100 RGB images, 256x256 px, 0.3 m (USGS orthoimagery), TIFF.

    Yang & Newsam, "Bag-of-visual-words and spatial extensions for land-use classification", ACM GIS 2010.
    """

    name = "UCM"
    url = "http://weegee.vision.ucmerced.edu/datasets/landuse.html (UCMerced_LandUse.zip)"
    layout = "<root>/UCMerced_LandUse/Images/<class>/<class>NN.tif (21 classes x 100)"
    base_dir = "UCMerced_LandUse/Images"
    classes = ("agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
               "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
               "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
               "sparseresidential", "storagetanks", "tenniscourt")


class AID(ClassFolderDataset):
    """Aerial Image Dataset: 10,000 images in 30 classes, 600x600 px, 0.5-8 m (Google Earth), JPEG.

    Xia et al., "AID: A benchmark data set for performance evaluation of aerial scene classification", TGRS 2017.
    """

    name = "AID"
    url = "https://captain-whu.github.io/AID/ (AID.zip)"
    layout = "<root>/AID/<ClassDir>/<class>_<n>.jpg (30 classes)"
    base_dir = "AID"
    classes = ("Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
               "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
               "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
               "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct")


class PatternNet(ClassFolderDataset):
    """PatternNet: 38 classes x 800 images, 256x256 px, 0.06-4.7 m (Google Earth / Maps API), JPEG.

    Zhou et al., "PatternNet: A benchmark dataset for performance evaluation of remote sensing image
    retrieval", ISPRS JPRS 2018.
    """

    name = "PatternNet"
    url = "https://sites.google.com/view/zhouwx/dataset (PatternNet.zip)"
    layout = "<root>/PatternNet/images/<class>/<class>NNN.jpg (38 classes x 800)"
    base_dir = "PatternNet/images"
    classes = ("airplane", "baseball_field", "basketball_court", "beach", "bridge", "cemetery", "chaparral",
               "christmas_tree_farm", "closed_road", "coastal_mansion", "crosswalk", "dense_residential",
               "ferry_terminal", "football_field", "forest", "freeway", "golf_course", "harbor", "intersection",
               "mobile_home_park", "nursing_home", "oil_gas_field", "oil_well", "overpass", "parking_lot",
               "parking_space", "railway", "river", "runway", "runway_marking", "shipping_yard", "solar_panel",
               "sparse_residential", "storage_tank", "swimming_pool", "tennis_court", "transformer_station",
               "wastewater_treatment_plant")


class RESISC45(ClassFolderDataset):
    """NWPU-RESISC45: 45 classes x 700 images, 256x256 px, 0.2-30 m (Google Earth), JPEG.

    Cheng et al., "Remote sensing image scene classification: benchmark and state of the art", Proc. IEEE 2017.
    """

    name = "RESISC45"
    url = "https://gcheng-nwpu.github.io/#Datasets (NWPU-RESISC45.rar)"
    layout = "<root>/NWPU-RESISC45/<class>/<class>_NNN.jpg (45 classes x 700)"
    base_dir = "NWPU-RESISC45"
    classes = ("airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
               "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert", "forest",
               "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area", "intersection",
               "island", "lake", "meadow", "medium_residential", "mobile_home_park", "mountain", "overpass",
               "palace", "parking_lot", "railway", "railway_station", "rectangular_farmland", "river",
               "roundabout", "runway", "sea_ice", "ship", "snowberg", "sparse_residential", "stadium",
               "storage_tank", "tennis_court", "terrace", "thermal_power_station", "wetland")


class WHURS19(ClassFolderDataset):
    """WHU-RS19: 1,005 images in 19 classes, 600x600 px, up to 0.5 m (Google Earth), JPEG.

    Xia et al., "Structural high-resolution satellite image indexing", ISPRS TC VII 2010.
    """

    name = "WHU-RS19"
    url = "https://captain-whu.github.io/BED4RS/ (WHU-RS19.zip)"
    layout = "<root>/WHU-RS19/<Class>/<class>_NN.jpg (19 classes)"
    base_dir = "WHU-RS19"
    classes = ("Airport", "Beach", "Bridge", "Commercial", "Desert", "Farmland", "Forest", "Industrial",
               "Meadow", "Mountain", "Park", "Parking", "Pond", "Port", "Residential", "River", "Viaduct",
               "footballField", "railwayStation")


class MillionAID(ClassFolderDataset):
    """Million-AID: ~1M images, 51 leaf scene classes in a 3-level hierarchy (8 / 28 / 51), 110-31,672 px.

    Long et al., "On creating benchmark dataset for aerial image interpretation", JSTARS 2021. The leaf folder
    is the class (some leaves sit at the second level, e.g. ``water_area/beach``); ``hierarchy`` holds the folder
    path from the split root (L1/L2[/L3]). The public release labels only ``train`` (10,000 images in class
    folders); the ~990K ``test`` images come without labels (those are kept for the official evaluation server),
    so ``train`` is the default split and the one RSMEB evaluates (zero-shot: nothing is trained on it).
    """

    name = "Million-AID"
    url = "https://captain-whu.github.io/DiRS/ (Million-AID)"
    layout = "<root>/Million-AID/{train,test}/<L1>/<L2>[/<L3>]/<id>.jpg (leaf folder = class, 51 leaves)"
    base_dir = "Million-AID"
    splits = ("train", "test")

    @property
    def image_root(self) -> Path:
        return self.root / self.base_dir / self.split

    def _class_dirs(self) -> list[Path]:
        return leaf_folders(self.image_root)

    def _load(self) -> list[dict[str, Any]]:
        samples = super()._load()
        for s in samples:
            s["hierarchy"] = tuple(Path(s["image"]).parent.relative_to(self.image_root).parts)
        return samples


class NWPURESISC12(ClassFolderDataset):
    """NWPU-RESISC12: 12 NWPU-RESISC45 classes in the RESISC45 layout, ``<root>/<class>/<class>_NNN.jpg``.

    The ``shared/data/nwpu_resisc12`` zero-shot dev set (12 x 100, 256x256 JPEG, original bytes; never trained
    on). Two folders are merged classes, not RESISC45 names: ``farmland`` (rectangular + circular farmland) and
    ``residential`` (dense + medium + sparse residential). No split: ``"all"``.
    """

    name = "NWPU-RESISC12"
    url = "shared/data/nwpu_resisc12 (from github.com/leewssam/NPU-RESISC45-Classification, NWPU-RESISC12/)"
    layout = "<root>/<class>/<class>_NNN.jpg (12 classes)"
    base_dir = ""
    classes = ("beach", "commercial_area", "desert", "farmland", "forest", "industrial_area", "island", "lake",
               "mountain", "residential", "river", "wetland")


EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
                   "Residential", "River", "SeaLake")


class EuroSATRGB(ClassFolderDataset):
    """EuroSAT RGB: Sentinel-2 true colour, 64x64 px at 10 m, 10 classes, ``<root>/<Class>/<Class>_N.jpg``.

    Helber et al., "EuroSAT: a novel dataset and deep learning benchmark for land use and land cover
    classification", JSTARS 2019. The ``shared/data/eurosat_rgb_dev`` slice (100 per class) is a zero-shot dev set:
    never trained on. No split: ``"all"``.
    """

    name = "EuroSAT-RGB"
    url = "https://github.com/phelber/EuroSAT (EuroSAT.zip, RGB)"
    layout = "<root>/<Class>/<Class>_N.jpg (10 classes)"
    base_dir = ""
    extensions = (".jpg", ".jpeg")
    classes = EUROSAT_CLASSES


class EuroSATMS(ClassFolderDataset):
    """EuroSAT-MS: the same patches with all 13 Sentinel-2 L1C bands (B01-B08, B8A, B09-B12), uint16 GeoTIFF,
    ``<root>/<Class>/<Class>_N.tif``. The image stays a path: readers show it through the Sentinel-2 path of
    :mod:`geovec.inputs.bands` (band order from the band count, reflectance 0-0.3 as 0-255)."""

    name = "EuroSAT-MS"
    url = "https://github.com/phelber/EuroSAT (EuroSATallBands.zip)"
    layout = "<root>/<Class>/<Class>_N.tif (13-band GeoTIFF, 10 classes)"
    base_dir = ""
    extensions = (".tif", ".tiff")
    classes = EUROSAT_CLASSES


class ClassFolders(ClassFolderDataset):
    """Your own images in class folders: ``<root>/<class>/<image>``, or nested as in Million-AID (the leaf folder
    is the class)."""

    name = "class folders"
    url = "your own data"
    layout = "<root>/<class>/<image> (leaf folder = class)"

    def _class_dirs(self) -> list[Path]:
        return leaf_folders(self.image_root)
