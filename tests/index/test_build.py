import os

import numpy as np
import pytest

from geovec.index.build import build_index
from geovec.index.chips import ChipSpec, discover_files, iter_plans
from geovec.index.store import ChipStore

from tests.index.geovec_fake_model import write_geotiff
from tests.index.geovec_fake_model import FakeGeoModel

SPEC = ChipSpec(96, 16)


def all_chip_ids(folder, spec=SPEC):
    files, _ = discover_files([folder])
    return {c.id for _, chips, _ in iter_plans(files, spec) if chips for c in chips}


def test_build_indexes_every_chip_with_scalar_columns(scenes, tmp_path, fake_model):
    s = build_index([scenes], tmp_path / "db", fake_model, SPEC, progress=False)
    expected = all_chip_ids(scenes)
    assert s.failed == {} and s.files == 4 and s.rows == len(expected) == s.chips_embedded
    store = ChipStore(tmp_path / "db")
    t = store.table.to_arrow()
    assert set(t["id"].to_pylist()) == expected
    assert set(t["model_id"].to_pylist()) == {"fake-geo"}
    rows = {r["id"]: r for r in t.to_pylist()}
    utm = [r for r in rows.values() if r["path"].endswith("utm31.tif")]
    assert all(r["datetime"] is not None and r["datetime"].year == 2024 for r in utm)
    assert all(50 < r["centre_lat"] < 53 and r["min_lon"] <= r["centre_lon"] <= r["max_lon"] for r in utm)
    png = [r for r in rows.values() if r["path"].endswith("plain.png")]
    assert png and all(r["centre_lat"] is None and r["footprint"] is None for r in png)
    v = np.stack(t["vector"].to_numpy(zero_copy_only=False))
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert store.info.instruction == fake_model.document_instruction("retrieval", _image_item())


def _image_item():
    from geovec.inputs import parse_item

    return parse_item({"image": np.zeros((8, 8, 3), np.uint8)})


def test_corrupt_files_are_reported_and_skipped(scenes, tmp_path, fake_model):
    (scenes / "garbage.tif").write_bytes(b"II*\x00 this is not a tiff")
    good = scenes / "utm32.tif"
    truncated = scenes / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    s = build_index([scenes, tmp_path / "missing.tif"], tmp_path / "db", fake_model, SPEC, progress=False)
    assert set(s.failed) == {str(scenes / "garbage.tif"), str(truncated), str(tmp_path / "missing.tif")}
    trunc_ids = {cid for cid in all_chip_ids(scenes) if "truncated" in cid}
    ids = ChipStore(tmp_path / "db").ids()
    assert ids - trunc_ids == all_chip_ids(scenes) - trunc_ids  # every other file fully indexed
    # a damaged file keeps the chips that decode (its header and first tiles are intact), the rest is reported
    assert ids & trunc_ids < trunc_ids
    assert "truncated.tif" in s.failed[str(truncated)] or "read" in s.failed[str(truncated)]


def test_interrupted_build_resumes_without_duplicates_or_losses(scenes, tmp_path):
    db = tmp_path / "db"
    expected = all_chip_ids(scenes)
    first = FakeGeoModel(fail_after_batches=3)
    with pytest.raises(KeyboardInterrupt):
        build_index([scenes], db, first, SPEC, batch_size=4, commit_every=8, progress=False)
    store = ChipStore(db)
    done_before = len(store)
    assert 0 < done_before < len(expected) and done_before % 8 == 0  # whole steps only
    second = FakeGeoModel()
    s = build_index([scenes], db, second, SPEC, batch_size=4, commit_every=8, progress=False)
    assert second.items_embedded == len(expected) - done_before  # nothing embedded twice
    assert s.chips_skipped_done == done_before
    ids = ChipStore(db).table.to_arrow()["id"].to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) == expected  # none lost, none duplicated
    # the resumed vectors equal those of an uninterrupted build
    ref = tmp_path / "ref"
    build_index([scenes], ref, FakeGeoModel(), SPEC, progress=False)
    a = {r["id"]: r["vector"] for r in ChipStore(db).table.to_arrow().to_pylist()}
    b = {r["id"]: r["vector"] for r in ChipStore(ref).table.to_arrow().to_pylist()}
    assert all(np.allclose(a[k], b[k]) for k in expected)


def test_incremental_add_and_changed_file(scenes, tmp_path):
    db = tmp_path / "db"
    build_index([scenes], db, FakeGeoModel(), SPEC, progress=False)
    before = ChipStore(db).ids()
    write_geotiff(scenes / "new.tif", 100, 100, "EPSG:32631", (600_000, 5_700_000), 10.0, seed=9)
    m = FakeGeoModel()
    s = build_index([scenes], db, m, SPEC, progress=False)
    new_ids = {c for c in all_chip_ids(scenes) if "new.tif" in c}
    assert m.items_embedded == len(new_ids) == 4 and ChipStore(db).ids() == before | new_ids
    # a rewritten file is re-chipped: old rows replaced, no duplicates
    write_geotiff(scenes / "new.tif", 100, 100, "EPSG:32631", (600_000, 5_700_000), 10.0, seed=10)
    os.utime(scenes / "new.tif", ns=(1, 10**18))
    m2 = FakeGeoModel()
    build_index([scenes], db, m2, SPEC, progress=False)
    ids = ChipStore(db).table.to_arrow()["id"].to_pylist()
    assert m2.items_embedded == 4 and len(ids) == len(set(ids)) == len(before) + 4


def test_index_refuses_a_different_model(scenes, tmp_path):
    db = tmp_path / "db"
    build_index([scenes / "merc.tif"], db, FakeGeoModel(), SPEC, progress=False)
    with pytest.raises(ValueError, match="model_id"):
        build_index([scenes / "merc.tif"], db, FakeGeoModel(name="other"), SPEC, progress=False)


def test_resize_embeds_each_chip_at_that_size_and_an_index_keeps_its_size(scenes, tmp_path):
    from geovec.index import GeoIndex

    seen = []
    model = FakeGeoModel()
    encode = model.encode

    def recording(items, **kw):
        seen.extend(np.asarray(it["image"]).shape[:2] for it in items)
        return encode(items, **kw)

    model.encode = recording
    db = tmp_path / "db"
    build_index([scenes / "merc.tif"], db, model, ChipSpec(96, 16, resize=48), progress=False)
    assert seen and all(max(shape) == 48 for shape in seen)  # edge chips too (aspect kept)
    assert ChipStore(db).info.embed_size == 48
    merc = {cid for cid in all_chip_ids(scenes) if "merc" in cid}
    assert ChipStore(db).ids() == merc  # same chips, same footprints: only the embedded pixels are smaller
    with pytest.raises(ValueError, match="embed_size=48"):  # vectors of another size do not mix
        build_index([scenes / "utm31.tif"], db, FakeGeoModel(), ChipSpec(96, 16), progress=False)
    seen.clear()
    GeoIndex(db, model).add([scenes / "utm31.tif"], progress=False)  # add() keeps the index's resize
    assert seen and all(max(shape) == 48 for shape in seen)
    with pytest.raises(ValueError, match="chip resize must be at least 8"):
        ChipSpec(96, 16, resize=4)


@pytest.fixture(scope="module")
def ann_index(tmp_path_factory):
    """400 chips of four scenes, with the ANN index forced on from 300 rows."""
    from geovec.index import GeoIndex

    base = tmp_path_factory.mktemp("ann")
    folder = base / "many"
    folder.mkdir()
    for i in range(4):
        write_geotiff(folder / f"s{i}.tif", 320, 320, "EPSG:32631", (500_000 + 4000 * i, 5_000_000), 10.0, seed=i)
    idx = GeoIndex.build([folder], base / "db", FakeGeoModel(), chip_size=32, ann_min_rows=300, progress=False)
    return idx, GeoIndex.last_summary, folder


def test_ann_index_is_built_once_large_enough(ann_index, tmp_path):
    idx, s, folder = ann_index
    assert s.rows == 400 and s.ann_index and idx.store.has_vector_index()
    small = build_index([folder / "s0.tif"], tmp_path / "small", FakeGeoModel(), ChipSpec(32), ann_min_rows=300,
                        progress=False)
    assert not small.ann_index


def test_ann_search_with_prefilter_matches_exact(ann_index):
    idx = ann_index[0]
    rows = idx.store.to_arrow().to_pylist()
    lat, lon = rows[0]["centre_lat"], rows[0]["centre_lon"]
    for kw in ({"text": "quarry"}, {"text": "quarry", "near": (lat, lon), "within_km": 1.0},
               {"text": "quarry", "bbox": (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)}):
        ann = idx.search(k=8, **kw)
        exact = idx.search(k=8, exact=True, **kw)
        assert [h.id for h in ann] == [h.id for h in exact] and len(ann) == 8
