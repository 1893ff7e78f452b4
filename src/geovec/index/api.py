"""``GeoIndex``: the Python API over an index directory, with the same power as the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from geovec.domain import LatLon
from geovec.index.search import SearchHit, SearchQuery, check_model, hits_to_geojson, query_vector, search_vector
from geovec.index.store import ReadOnlyChipStore

if TYPE_CHECKING:  # building pulls in chipping and raster reading, which a search does not need
    from geovec.index.build import BuildSummary


class GeoIndex:
    """An index directory and the model its vectors came from (loaded by name on first use if not given).
    Searches read the index as it was when opened (or last extended with :meth:`add`); building and adding
    write through :func:`~geovec.index.build.build_index`."""

    def __init__(self, db: str | Path, model=None):
        self.store = ReadOnlyChipStore(db)
        self._model = model
        if model is not None:
            check_model(self.store, model)

    @property
    def model(self):
        if self._model is None:
            import geovec

            self._model = geovec.load_model(self.store.info.model_id)
            check_model(self.store, self._model)
        return self._model

    @property
    def info(self):
        return self.store.info

    def __len__(self) -> int:
        return len(self.store)

    @classmethod
    def build(cls, paths: Sequence[str | os.PathLike], db: str | Path, model, chip_size: int = 256,
              overlap: int = 0, bands: Sequence[int] | None = None, resize: int | None = None,
              **kwargs) -> "GeoIndex":
        """Index ``paths`` into ``db`` (incremental: rerun to add new files) and open it. ``resize``: chips are
        resized to this many pixels before embedding (:class:`~geovec.index.chips.ChipSpec`)."""
        from geovec.index.build import build_index
        from geovec.index.chips import ChipSpec

        cls.last_summary: BuildSummary = build_index(
            paths, db, model, ChipSpec(chip_size, overlap, tuple(bands) if bands else None, resize), **kwargs)
        return cls(db, model)

    def add(self, paths: Sequence[str | os.PathLike], **kwargs) -> BuildSummary:
        """Index more files with the chipping the index was built with."""
        from geovec.index.build import build_index
        from geovec.index.chips import ChipSpec

        info = self.store.info
        spec = ChipSpec(info.chip_size, info.chip_overlap, tuple(info.bands) if info.bands else None, info.embed_size)
        summary = build_index(paths, self.store.path, self.model, spec, task=info.task,
                              with_location=info.with_location, **kwargs)
        self.store = ReadOnlyChipStore(self.store.path)
        return summary

    def search(self, text: str | None = None, image: Any = None, box: Sequence[float] | None = None,
               near: LatLon | tuple[float, float] | None = None, within_km: float | None = None,
               bbox: tuple[float, float, float, float] | None = None, k: int = 10, instruction: str | None = None,
               exact: bool = False, like: str | None = None) -> list[SearchHit]:
        """Chips most similar to the one interleaved query built from the given parts (see
        :class:`~geovec.index.search.SearchQuery` for units and which side embeds what), or to the stored
        chip ``like`` (a chip id); ``bbox`` / ``within_km`` pre-filter."""
        return self.query(SearchQuery(text=text, image=image, box=box, near=near, within_km=within_km, bbox=bbox,
                                      k=k, instruction=instruction, exact=exact, like=like))

    def like(self, chip_id: str, k: int = 10, **filters) -> list[SearchHit]:
        """Chips most similar to the indexed chip ``chip_id`` (its stored vector; nothing is embedded)."""
        return self.search(like=chip_id, k=k, **filters)

    def query(self, query: SearchQuery) -> list[SearchHit]:
        model = None if query.like is not None else self.model  # a stored vector needs no model
        return search_vector(self.store, query_vector(self.store, model, query), query)

    def search_geojson(self, **kwargs) -> dict:
        q = SearchQuery(**kwargs)
        return hits_to_geojson(self.query(q), q)

    def export_geoparquet(self, path: str | Path) -> Path:
        from geovec.index.export import export_geoparquet

        return export_geoparquet(self.store, path)
