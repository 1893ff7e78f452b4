"""Writes location_regression.npz: run once at commit 048a2a6 (the location tower was geoclip 1.3.0's
LocationEncoder) from a checkout of that commit's src/, with geoclip installed:

    PYTHONPATH=<048a2a6 checkout>/src python3 tests/models/data/make_location_regression.py

GeoCLIP's outputs on six fixed coordinates and the bundled default's embeddings of five place items and two geo
queries, on the torch backend with one thread. tests/models/test_location_encoder.py holds geovec's own encoder
and the default model to them.

When the bundled default changes, its place embeddings are written again by the current code (GeoCLIP's outputs
are kept; the test holds geovec's encoder to them, bitwise at one thread):

    PYTHONPATH=src python3 tests/models/data/make_location_regression.py --places-only
"""

import sys

from pathlib import Path

import numpy as np
import torch

import geovec

torch.set_num_threads(1)
m = geovec.load_model(backend="torch", num_threads=1, lazy=False)
lat = [52.09, -33.87, 0.0, 89.9, -89.9, 35.68]
lon = [5.12, 151.21, 0.0, -179.9, 179.9, 139.69]
places = [{"lat": a, "lon": o} for a, o in zip(lat[:4], lon[:4])] + [{"lat": 35.68, "lon": 139.69, "text": "harbour"}]
with torch.inference_mode():
    embeddings = m.encode(places, batch_size=8, show_progress_bar=False)
    queries = m.encode_query(places[:2], task="geo")
    raw = m.location(torch.tensor(lat), torch.tensor(lon)).numpy()
path = Path(__file__).with_name("location_regression.npz")
if "--places-only" in sys.argv:
    kept = np.load(path)
    np.testing.assert_array_equal(raw.astype(np.float32), kept["geoclip"])  # the encoder is still GeoCLIP's
    raw = kept["geoclip"]
np.savez_compressed(path, lat=np.array(lat, np.float32), lon=np.array(lon, np.float32), geoclip=raw.astype(np.float32),
                    place_embeddings=embeddings.astype(np.float32), geo_queries=queries.astype(np.float32))
