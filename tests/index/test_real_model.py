"""A few checks with the real default model (loaded once per session) and, where present, real GeoTIFFs."""

import csv

import numpy as np
import pytest

from geovec.index import GeoIndex
from geovec.index.chips import ChipSpec, plan_chips


pytestmark = pytest.mark.slow


def test_model_index_and_interleaved_search(scenes, tmp_path, model):
    idx = GeoIndex.build([scenes / "utm32.tif", scenes / "merc.tif"], tmp_path / "db", model, chip_size=128,
                         progress=False)
    assert len(idx) == 5 and idx.info.model_id == model.model_id and idx.info.dimension == model.embed_dim
    v = np.stack(idx.store.to_arrow()["vector"].to_numpy(zero_copy_only=False))
    assert v.shape == (5, model.embed_dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    # stored vectors are the model's document embeddings of the chip pixels
    from geovec.index.chips import read_chip

    chip = plan_chips(scenes / "merc.tif", ChipSpec(128))[0]
    ref = model.encode_document([{"image": read_chip(chip).pixels}], task="retrieval")[0]
    row = [r for r in idx.store.to_arrow().to_pylist() if r["id"] == chip.id][0]
    assert np.allclose(row["vector"], ref, atol=1e-4)
    hits = idx.search(image=str(scenes / "utm32.tif"), box=[0, 0, 100, 100], text="a field", near=(52.03, 6.05),
                      within_km=50, k=3)
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert all(-1.0 <= h.score <= 1.0 and h.distance_km <= 50 for h in hits)


@pytest.mark.shared_data
def test_footprints_of_real_geotiffs_match_the_published_centres(shared_data):
    root = shared_data
    rows = [r for r in csv.DictReader(open(root / "geo_index.csv")) if r["dataset"] in ("rsvqa_lr", "rsvqa_hr")][:12]
    for r in rows:
        path = root / r["dataset"] / r["relpath"]
        w, h = int(r["width"]), int(r["height"])
        chip = plan_chips(path, ChipSpec(max(w, h)))[0]  # one chip = the whole scene
        assert chip.window == (0, 0, w, h)
        assert chip.centre_lat == pytest.approx(float(r["center_lat"]), abs=1e-6)
        assert chip.centre_lon == pytest.approx(float(r["center_lon"]), abs=1e-6)
