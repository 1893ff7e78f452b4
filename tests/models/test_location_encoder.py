"""geovec's own GeoCLIP location encoder computes what GeoCLIP's does, from the weights shipped in the package.

``data/location_regression.npz`` was written at commit 048a2a6, where the location tower *was*
``geoclip.LocationEncoder`` (geoclip 1.3.0): its outputs on six fixed coordinates (``geoclip``) and the bundled
default model's embeddings of five place items (``place_embeddings``) and two geo queries (``geo_queries``),
computed on the torch backend with one thread (``data/make_location_regression.py``). So the reference check
runs everywhere, without ``geoclip``; where ``geoclip`` is installed, one more test compares with it live. The
comparisons run on one thread too: another thread count sums the 1024-wide layers in another order, which moves
these outputs (at most 0.065) by up to 2e-6.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geovec.models.location_encoder import WEIGHTS, GeoCLIPLocationEncoder, equal_earth_projection

FIXTURE = np.load(Path(__file__).parent / "data" / "location_regression.npz")
PLACES = [{"lat": 52.09, "lon": 5.12}, {"lat": -33.87, "lon": 151.21}, {"lat": 0.0, "lon": 0.0},
          {"lat": 89.9, "lon": -179.9}, {"lat": 35.68, "lon": 139.69, "text": "harbour"}]


@pytest.fixture(scope="module")
def encoder():
    return GeoCLIPLocationEncoder().eval()


pytestmark = pytest.mark.usefixtures("one_thread")  # the thread count the fixture was computed with


def _encode(encoder, lat, lon) -> np.ndarray:
    with torch.inference_mode():
        return encoder(torch.stack([torch.as_tensor(lat), torch.as_tensor(lon)], dim=-1).float()).numpy()


def test_equals_geoclip_reference_outputs(encoder):
    out = _encode(encoder, FIXTURE["lat"], FIXTURE["lon"])
    assert out.shape == (6, 512)
    np.testing.assert_allclose(out, FIXTURE["geoclip"], atol=1e-6, rtol=0)


def test_equals_installed_geoclip(encoder):
    geoclip = pytest.importorskip("geoclip", reason="geoclip is not installed (optional: the reference "
                                  "implementation; its outputs are also in data/location_regression.npz)")
    reference = geoclip.LocationEncoder().eval()
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.uniform(-90, 90, 64), [90.0, -90.0, 0.0]]).astype(np.float32)
    lon = np.concatenate([rng.uniform(-180, 180, 64), [180.0, -180.0, 0.0]]).astype(np.float32)
    with torch.inference_mode():
        want = reference(torch.from_numpy(np.stack([lat, lon], axis=1))).numpy()
    np.testing.assert_allclose(_encode(encoder, lat, lon), want, atol=1e-6, rtol=0)


def test_equal_earth_projection_known_points():
    # the equator/prime meridian maps to the origin; x grows with longitude, y with latitude, symmetric about both
    xy = equal_earth_projection(torch.tensor([[0.0, 0.0], [0.0, 90.0], [45.0, 0.0], [45.0, 90.0], [-45.0, -90.0]]))
    assert torch.allclose(xy[0], torch.zeros(2))
    assert xy[1, 0] > 0 and xy[1, 1] == 0 and xy[2, 0] == 0 and xy[2, 1] > 0
    assert 0 < xy[3, 0] < xy[1, 0] and xy[3, 1] == xy[2, 1]  # meridians converge towards the poles
    assert torch.allclose(xy[4], -xy[3])


def test_untrained_encoder_differs_and_pretrained_weights_are_geoclips(encoder):
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), "pt") as f:
        meta = f.metadata()
    assert meta["license"] == "MIT" and meta["source_sha256"].startswith("94b80ae3")
    licence = (WEIGHTS.parent / "LICENSE").read_text()
    assert "MIT License" in licence and "Vicente Vivanco" in licence
    torch.manual_seed(0)
    fresh = _encode(GeoCLIPLocationEncoder(pretrained=False).eval(), FIXTURE["lat"], FIXTURE["lon"])
    assert np.abs(fresh - FIXTURE["geoclip"]).max() > 1e-2  # the fixture is not met by any encoder of this shape


def test_bundled_default_place_embeddings_unchanged(model):
    """The default model embeds places as recorded (torch backend): written with geoclip's encoder for r20, and again
    with geovec's for r26 (its raw outputs equal geoclip's, checked above)."""
    from geovec.runtime.backends import attach

    previous = model.runner
    try:
        attach(model, None)
        places = model.encode(PLACES, batch_size=8, show_progress_bar=False)
        queries = model.encode_query(PLACES[:2], task="geo")
    finally:
        attach(model, previous)
    np.testing.assert_allclose(places, FIXTURE["place_embeddings"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(queries, FIXTURE["geo_queries"], atol=1e-6, rtol=0)


BLOCK_GEOCLIP = """
import sys
class NoGeoclip:  # as if geoclip were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "geoclip":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoGeoclip())
"""


def test_location_tower_needs_no_geoclip():
    code = BLOCK_GEOCLIP + (
        "import json, torch\nfrom geovec.models.towers import LocationTower\n"
        "z = LocationTower()(torch.tensor([52.09]), torch.tensor([5.12]))\n"
        "print(json.dumps([list(z.shape), 'geoclip' in sys.modules]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.splitlines()[-1]) == [[1, 512], False]
