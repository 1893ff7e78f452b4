from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the format writers in formats.py

SHARED = Path(os.environ.get("GEOVEC_DATA_ROOT", Path(__file__).resolve().parents[3] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "rsicd" / "dataset_rsicd.json").exists():
        pytest.skip(f"real data not present at {SHARED} (set GEOVEC_DATA_ROOT); CI has it")
    return SHARED


@pytest.fixture(scope="session")
def real_model():
    """The bundled default model, loaded once per test session (~6-15 s)."""
    import geovec

    return geovec.load_model()
