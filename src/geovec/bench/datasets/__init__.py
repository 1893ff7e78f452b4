"""Loaders for the official on-disk formats of the RSMEB datasets (torchgeo-shaped, never downloading)."""

from geovec.bench.datasets.base import BenchDataset, DatasetNotFoundError, prompt_name
from geovec.bench.datasets.captions import (
    CAPTION_DATASETS,
    RSICD,
    RSITMD,
    CaptionDataset,
    RSICDScenes,
    SydneyCaptions,
    UCMCaptions,
)
from geovec.bench.datasets.dior_rsvg import DIORRSVG
from geovec.bench.datasets.geotiff import GeoTiffFolder, RSVQAHRImages, RSVQALRImages
from geovec.bench.datasets.patterncom import PatternCom
from geovec.bench.datasets.rsvqa import RSVQAHR, RSVQALR
from geovec.bench.datasets.scenes import (
    AID,
    RESISC45,
    SCENE_DATASETS,
    WHURS19,
    ClassFolderDataset,
    MillionAID,
    PatternNet,
    UCMerced,
)

__all__ = [
    "AID", "CAPTION_DATASETS", "DIORRSVG", "RESISC45", "RSICD", "RSITMD", "RSVQAHR", "RSVQALR", "SCENE_DATASETS",
    "WHURS19", "BenchDataset", "CaptionDataset", "ClassFolderDataset", "DatasetNotFoundError", "GeoTiffFolder",
    "MillionAID", "PatternCom", "PatternNet", "RSICDScenes", "RSVQAHRImages", "RSVQALRImages", "SydneyCaptions",
    "UCMCaptions", "UCMerced", "prompt_name",
]
