"""On-disk cache of frozen vision-tower feature maps, so training skips the tower.

While the vision tower is frozen its output for an image depends only on the image bytes and the resize rule,
so a feature map computed once can stand in for the tower on every later step: ``PreparedItem.features``
makes :meth:`SingleEncoderModel.embed_prepared` skip the tower. Entries are keyed by the SHA-256 of the
image file bytes plus a signature of the tower and the resize rule, so a changed image or config misses the
cache instead of returning stale features. Maps are stored as ``.npy`` (float32 by default: bit-identical
to the tower's output; float16 halves the disk at ~1e-3 relative error).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from geovec.inputs import Item
from geovec.progress import Progress


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """Feature maps (C, h, w) of image files for one model's frozen vision tower, under ``root``."""

    def __init__(self, root: str | os.PathLike, model, dtype: str = "float32"):
        if not model.supports_image_features:
            raise ValueError(f"{type(model).__name__} has no separable vision tower: its features cannot be cached")
        if not model.image_tower_frozen:
            raise ValueError("the vision tower trains in this config: its features cannot be cached")
        self.model = model
        self.dtype = np.dtype(dtype)
        signature = f"{model.image_features_signature()}-{self.dtype.name}"
        self.root = Path(root) / signature
        self.root.mkdir(parents=True, exist_ok=True)
        self._digests: dict[str, str] = {}

    def key(self, path: str | os.PathLike) -> str:
        p = str(path)
        if p not in self._digests:
            self._digests[p] = file_digest(p)
        return self._digests[p]

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def has(self, path) -> bool:
        return self._file(self.key(path)).exists()

    def get(self, path) -> torch.Tensor:
        """The cached map of one image file; KeyError if it was never computed."""
        f = self._file(self.key(path))
        if not f.exists():
            raise KeyError(f"no cached features for {path} (run FeatureCache.fill first)")
        return torch.from_numpy(np.load(f).astype(np.float32, copy=False))

    def fill(self, paths: Iterable[str | os.PathLike], batch_size: int = 32, show_progress_bar: bool = True) -> int:
        """Compute and store the maps of every path not yet cached; returns how many were computed.
        Resumable: an interrupted fill keeps what it wrote (each file is written atomically)."""
        todo = sorted({str(p) for p in paths if not self.has(p)})
        if not todo:
            return 0
        model = self.model
        with ThreadPoolExecutor(max_workers=2) as pool, \
                Progress(len(todo), "vision features", "image", enabled=show_progress_bar) as bar:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                prepared = list(pool.map(lambda p: model.prepare(Item(image=p, order=("image",))), chunk))
                with torch.inference_mode():
                    fmaps = model.image_features([pr.pixels for pr in prepared])
                for p, fm in zip(chunk, fmaps):
                    f = self._file(self.key(p))
                    f.parent.mkdir(parents=True, exist_ok=True)
                    tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npy")  # unique per writer process
                    np.save(tmp, fm.cpu().numpy().astype(self.dtype))
                    os.replace(tmp, f)
                bar.update(len(chunk))
        return len(todo)
