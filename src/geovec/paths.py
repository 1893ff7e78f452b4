"""Where data and caches live by default."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path | None:
    """``$GEOVEC_DATA_ROOT``, else ``../shared/data`` beside the repository (or the working directory)."""
    env = os.environ.get("GEOVEC_DATA_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in [*here.parents, Path.cwd()]:
        cand = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and cand.is_dir():
            return cand
    return None


def cache_dir() -> Path:
    """``$GEOVEC_CACHE``, else ``~/.cache/geovec``: derived files (features, dequantised weights, dev tasks)."""
    return Path(os.environ.get("GEOVEC_CACHE") or Path.home() / ".cache" / "geovec")
