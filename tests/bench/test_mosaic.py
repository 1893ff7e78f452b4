import numpy as np
import pytest
from tests.bench.formats import write_image
from PIL import Image

from geovec.data.mosaic import Mosaic, add_region, build_mosaics, place_box


@pytest.fixture
def samples(tmp_path):
    out = []
    for i in range(12):
        p = write_image(tmp_path / f"img_{i}.png", i, size=40)
        out.append({"image": p, "captions": [f"caption {i} a", f"caption {i} b"], "class_name": f"class{i % 4}",
                    "prompt_name": f"class {i % 4}", "filename": p.name})
    return out


def _overlap(a, b):
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def test_mosaics_are_deterministic_in_the_seed(samples):
    a = build_mosaics(samples, 3, seed=5, canvas_size=200, regions_per_mosaic=(2, 3), side_range=(40, 80))
    b = build_mosaics(samples, 3, seed=5, canvas_size=200, regions_per_mosaic=(2, 3), side_range=(40, 80))
    c = build_mosaics(samples, 3, seed=6, canvas_size=200, regions_per_mosaic=(2, 3), side_range=(40, 80))
    assert [m.to_dict() for m in a] == [m.to_dict() for m in b]
    assert [m.to_dict() for m in a] != [m.to_dict() for m in c]
    assert np.array_equal(a[0].render(), b[0].render())


def test_regions_lie_inside_do_not_overlap_and_keep_their_labels(samples):
    mosaics = build_mosaics(samples, 4, seed=0, canvas_size=(240, 200), regions_per_mosaic=(3, 3), side_range=(40, 70))
    seen = []
    for m in mosaics:
        assert m.size == (240, 200)
        assert len(m.regions) == 3
        assert len({r.class_name for r in m.regions}) == 3  # distinct classes per mosaic
        for i, r in enumerate(m.regions):
            x1, y1, x2, y2 = r.box
            assert 0 <= x1 < x2 <= 240 and 0 <= y1 < y2 <= 200
            assert 40 * 0.5 <= x2 - x1 <= 70
            for other in m.regions[i + 1:]:
                assert not _overlap(r.box, other.box)
            src = next(s for s in samples if str(s["image"]) == r.source)
            assert r.captions == src["captions"] and r.class_name == src["class_name"]
            assert r.meta["filename"] == src["filename"]
            seen.append(r.source)
    assert len(seen) == len(set(seen)) == 12  # each source used once while unused ones remain


def test_render_places_the_source_pixels_in_the_box(samples):
    m = build_mosaics(samples[:1], 1, seed=0, canvas_size=120, regions_per_mosaic=(1, 1), side_range=(40, 40))[0]
    px = m.render()
    x1, y1, x2, y2 = m.regions[0].box
    src = np.asarray(Image.open(samples[0]["image"]).convert("RGB"))  # 40x40 -> 40x40, no resampling change
    assert np.array_equal(px[y1:y2, x1:x2], src)
    mask = np.ones(px.shape[:2], bool)
    mask[y1:y2, x1:x2] = False
    assert (px[mask] == np.array(m.background, dtype=np.uint8)).all()


def test_free_slot_and_add_region(samples, tmp_path):
    m = build_mosaics(samples, 1, seed=1, canvas_size=240, regions_per_mosaic=(2, 2), side_range=(50, 60), free_slots=1)[0]
    assert len(m.free_boxes) == 1
    assert not any(_overlap(m.free_boxes[0], r.box) for r in m.regions)
    edited = add_region(m, samples[11])
    assert len(edited.regions) == 3 and edited.regions[-1].box == m.free_boxes[0] and not edited.free_boxes
    assert edited.id != m.id and m.regions == edited.regions[:2]
    with pytest.raises(ValueError, match="no free slot"):
        add_region(edited, samples[10])
    # round trip through the manifest form and PNG
    again = Mosaic.from_dict(edited.to_dict())
    assert again.to_dict() == edited.to_dict()
    p = edited.save(tmp_path / "m.png")
    assert np.array_equal(np.asarray(Image.open(p)), edited.render())


def test_place_box_gives_up_when_nothing_fits():
    rng = np.random.default_rng(0)
    assert place_box(rng, (50, 50), 1.0, (40, 45), taken=[(0, 0, 50, 50)], tries=60) is None


def test_bad_arguments(samples):
    with pytest.raises(ValueError):
        build_mosaics([], 1)
    with pytest.raises(ValueError):
        build_mosaics(samples, 1, regions_per_mosaic=(3, 2))
    with pytest.raises(TypeError, match="paths"):
        build_mosaics([{"image": np.zeros((8, 8, 3), np.uint8)}], 1, canvas_size=64, side_range=(8, 8))
