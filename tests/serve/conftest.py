"""Fixtures for the server tests: a small index built with the fake model, and a test client."""

from __future__ import annotations

import pytest

from tests.index.geovec_fake_model import FakeGeoModel, make_scenes


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(db dir, scenes dir, model): the scenes chipped at 64 px and indexed with the fake model."""
    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec

    base = tmp_path_factory.mktemp("served")
    scenes = make_scenes(base / "scenes")
    model = FakeGeoModel()
    build_index([scenes], base / "db", model, ChipSpec(64), progress=False)
    return base / "db", scenes, model


@pytest.fixture(scope="module")
def client(served):
    from fastapi.testclient import TestClient

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    db, scenes, model = served
    app = create_app(db, model, Limits(roots=[scenes], max_request_bytes=2_000_000, max_image_pixels=300 * 300,
                                       max_items=16))
    with TestClient(app) as c:
        yield c

