"""The data layer: readers of the official on-disk formats of remote-sensing datasets (torchgeo-shaped, never
downloading), shared by the benchmark (``geovec.bench``) and training (``geovec.train``), and the mosaic builder."""

from geovec._lazy import lazy_exports

__all__ = [
    "AID", "DIORRSVG", "RESISC45", "RSICD", "RSITMD", "RSVQAHR", "RSVQALR", "WHURS19", "Dataset", "CaptionDataset", "ClassFolderDataset", "DatasetNotFoundError", "EuroSATMS", "EuroSATRGB",
    "GeoTiffFolder",
    "MillionAID", "NWPURESISC12", "NWPUVHR10", "PatternCom", "PatternNet", "RSICDScenes", "RSVQAHRImages", "RSVQALRImages",
    "SydneyCaptions", "UCMCaptions", "UCMerced", "prompt_name",
]
__getattr__, __dir__ = lazy_exports(__name__, {
    "Dataset": "geovec.data.base", "DatasetNotFoundError": "geovec.data.base",
    "prompt_name": "geovec.data.base", "CaptionDataset": "geovec.data.captions", "RSICD": "geovec.data.captions",
    "RSICDScenes": "geovec.data.captions", "RSITMD": "geovec.data.captions",
    "SydneyCaptions": "geovec.data.captions", "UCMCaptions": "geovec.data.captions",
    "DIORRSVG": "geovec.data.dior_rsvg", "NWPUVHR10": "geovec.data.nwpu_vhr10", "GeoTiffFolder": "geovec.data.geotiff",
    "RSVQAHRImages": "geovec.data.geotiff", "RSVQALRImages": "geovec.data.geotiff",
    "PatternCom": "geovec.data.patterncom", "RSVQAHR": "geovec.data.rsvqa", "RSVQALR": "geovec.data.rsvqa",
    "AID": "geovec.data.scenes", "ClassFolderDataset": "geovec.data.scenes", "MillionAID": "geovec.data.scenes",
    "NWPURESISC12": "geovec.data.scenes", "PatternNet": "geovec.data.scenes", "RESISC45": "geovec.data.scenes",
    "UCMerced": "geovec.data.scenes", "EuroSATMS": "geovec.data.scenes",
    "EuroSATRGB": "geovec.data.scenes", "WHURS19": "geovec.data.scenes",
})
