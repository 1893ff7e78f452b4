"""The data layer: readers of the official on-disk formats of remote-sensing datasets (torchgeo-shaped, never
downloading), shared by the benchmark (``geovec.bench``) and training (``geovec.train``), and the mosaic builder."""

from geovec.data.base import BenchDataset, DatasetNotFoundError, prompt_name
from geovec.data.captions import (
    RSICD,
    RSITMD,
    CaptionDataset,
    RSICDScenes,
    SydneyCaptions,
    UCMCaptions,
)
from geovec.data.dior_rsvg import DIORRSVG
from geovec.data.nwpu_vhr10 import NWPUVHR10
from geovec.data.geotiff import GeoTiffFolder, RSVQAHRImages, RSVQALRImages
from geovec.data.patterncom import PatternCom
from geovec.data.rsvqa import RSVQAHR, RSVQALR
from geovec.data.scenes import (
    AID,
    RESISC45,
    WHURS19,
    ClassFolderDataset,
    EuroSATMS,
    EuroSATRGB,
    MillionAID,
    NWPURESISC12,
    PatternNet,
    UCMerced,
)

__all__ = [
    "AID", "DIORRSVG", "RESISC45", "RSICD", "RSITMD", "RSVQAHR", "RSVQALR", "WHURS19", "BenchDataset", "CaptionDataset", "ClassFolderDataset", "DatasetNotFoundError", "EuroSATMS", "EuroSATRGB",
    "GeoTiffFolder",
    "MillionAID", "NWPURESISC12", "NWPUVHR10", "PatternCom", "PatternNet", "RSICDScenes", "RSVQAHRImages", "RSVQALRImages",
    "SydneyCaptions", "UCMCaptions", "UCMerced", "prompt_name",
]
