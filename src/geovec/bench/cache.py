"""Embedding cache: each distinct input is embedded once per model.

Keyed by ``model_id@revision`` and :meth:`Item.content_key` (a hash of the image bytes/pixels, text, boxes,
location **and instruction**), stored in one SQLite file (``<cache_dir>/embeddings.sqlite``; default
:func:`geovec.paths.cache_dir`, ``$GEOVEC_CACHE`` or ``~/.cache/geovec``). Writes are
committed after every chunk, so an interrupted run loses at most one chunk and resumes where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from geovec.inputs import parse_item
from geovec.paths import cache_dir as default_cache_dir


class EmbeddingCache:
    def __init__(self, cache_dir: str | Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.key_seconds = 0.0
        self._db: sqlite3.Connection | None = None
        if enabled:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.cache_dir / "embeddings.sqlite"))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, dim INTEGER, vec BLOB, PRIMARY KEY (model, key))"
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def keys(self, items: Sequence[dict]) -> list[str]:
        t = time.perf_counter()
        keys = [parse_item(it, i).content_key() for i, it in enumerate(items)]
        self.key_seconds += time.perf_counter() - t
        return keys

    def _get(self, model: str, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        if self._db is None:
            return found
        uniq = list(dict.fromkeys(keys))
        for s in range(0, len(uniq), 500):
            chunk = uniq[s : s + 500]
            rows = self._db.execute(
                f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({','.join('?' * len(chunk))})", [model, *chunk]
            ).fetchall()
            for k, blob in rows:
                found[k] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _put(self, model: str, keys: list[str], vecs: np.ndarray) -> None:
        if self._db is None:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO emb (model, key, dim, vec) VALUES (?, ?, ?, ?)",
            [(model, k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vecs)],
        )
        self._db.commit()

    def embed(self, encoder, items: Sequence[dict], desc: str = "embed", chunk: int = 128,
              progress: bool = True) -> np.ndarray:
        """Embeddings (N, D) for ``items`` (dicts carrying their instruction), computing only what the cache
        lacks; duplicate items within the call are embedded once."""
        keys = self.keys(items)
        found = self._get(encoder.namespace, keys) if self.enabled else {}
        todo_keys = [k for k in dict.fromkeys(keys) if k not in found]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        self.hits += len(set(keys)) - len(todo_keys)
        self.misses += len(todo_keys)
        if todo_keys:
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo_keys), desc=desc, unit="item", leave=False)
            for s in range(0, len(todo_keys), chunk):
                ks = todo_keys[s : s + chunk]
                vecs = encoder.encode([items[first[k]] for k in ks])
                self._put(encoder.namespace, ks, vecs)
                for k, v in zip(ks, vecs):
                    found[k] = v
                if bar is not None:
                    bar.update(len(ks))
            if bar is not None:
                bar.close()
        return np.stack([found[k] for k in keys]).astype(np.float32)
