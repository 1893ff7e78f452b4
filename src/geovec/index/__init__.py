"""Index imagery and search it: chipping, LanceDB storage, GeoParquet export, search.

    from geovec.index import GeoIndex
    index = GeoIndex.build(["scenes/"], db="my.lancedb", model=geovec.load_model(), chip_size=256)
    hits = index.search(text="solar farm", near=(52.1, 5.2), within_km=20, k=10)
"""

import importlib

_EXPORTS = {
    "GeoIndex": "geovec.index.api", "BuildSummary": "geovec.index.build", "build_index": "geovec.index.build",
    "Chip": "geovec.index.chips", "ChipSpec": "geovec.index.chips", "plan_chips": "geovec.index.chips",
    "read_chip": "geovec.index.chips", "SearchHit": "geovec.index.search", "SearchQuery": "geovec.index.search",
    "hits_to_geojson": "geovec.index.search", "search": "geovec.index.search", "ChipStore": "geovec.index.store",
    "IndexInfo": "geovec.index.store", "export_geoparquet": "geovec.index.export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # lazy: `geovec --help` imports geovec.index.cli, which must not pull in lancedb / pyarrow
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geovec.index' has no attribute {name!r}")
