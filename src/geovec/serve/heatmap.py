"""The map's similarity heatmap: every georeferenced chip of the index scored against the current query with
the vectors already stored (one matrix product per query, nothing re-embedded), sent as one byte per chip.

The chips' vectors and bounding boxes are read once and kept in memory (reloaded when the table changes).
The page fetches the boxes once (``GET /heatmap/boxes.bin``: little-endian float32 ``min_lon, min_lat, max_lon,
max_lat`` per chip, in the same order as the scores) and draws each chip in its score's colour on a canvas."""

from __future__ import annotations

import base64
import threading

import numpy as np

BOX_COLUMNS = ["min_lon", "min_lat", "max_lon", "max_lat"]


class ChipScores:
    """All georeferenced chips of ``store``: their vectors (N, D) float32 and boxes (N, 4) float32."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._version = None
        self.vectors = np.zeros((0, 0), np.float32)
        self.boxes = np.zeros((0, 4), np.float32)

    def _table_version(self):
        try:
            return self.store.table.version
        except Exception:  # a LanceDB without versions: count rows instead
            return len(self.store)

    def load(self) -> str:
        """Read vectors and boxes if the table changed since the last read; returns the version token that
        ties scores to the order of :meth:`boxes_bytes`."""
        version = self._table_version()
        with self._lock:
            if version != self._version:
                t = (self.store.table.search().where("min_lon IS NOT NULL").select(["vector", *BOX_COLUMNS])
                     .limit(None).to_arrow())
                if t.num_rows:
                    flat = t["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
                    self.vectors = np.ascontiguousarray(flat.reshape(t.num_rows, -1), np.float32)
                    self.boxes = np.stack([t[c].to_numpy(zero_copy_only=False) for c in BOX_COLUMNS], 1).astype(np.float32)
                else:
                    self.vectors = np.zeros((0, self.store.info.dimension), np.float32)
                    self.boxes = np.zeros((0, 4), np.float32)
                self._version = version
            return str(self._version)

    def boxes_bytes(self) -> tuple[bytes, str]:
        version = self.load()
        return np.ascontiguousarray(self.boxes, "<f4").tobytes(), version

    def heatmap(self, query: np.ndarray) -> dict:
        """Scores of every georeferenced chip against ``query``: cosine similarity (the index's metric) of the
        stored vectors, mapped to 0-255 between ``lo`` (the 1st percentile; lower scores clip to 0) and ``hi``
        (the best score), base64 (one byte per chip, in the order of ``/heatmap/boxes.bin``)."""
        version = self.load()
        with self._lock:
            vectors = self.vectors
        q = np.asarray(query, np.float32).ravel()
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        scores = vectors @ q  # the stored vectors are unit length (the index is built normalised)
        if not self.store.info.normalized:
            scores = scores / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
        if len(scores) == 0:
            return {"version": version, "count": 0, "lo": None, "hi": None, "scores": ""}
        lo, hi = float(np.percentile(scores, 1)), float(scores.max())
        span = hi - lo if hi > lo else 1.0
        q8 = np.clip(np.rint((scores - lo) / span * 255), 0, 255).astype(np.uint8)
        return {"version": version, "count": int(len(scores)), "lo": lo, "hi": hi,
                "scores": base64.b64encode(q8.tobytes()).decode("ascii")}
