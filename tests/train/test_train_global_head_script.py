"""benchmarks/train_global_head.py end to end on a tiny data root: the adapted model differs from the one it
started from in the image head only (texts embed exactly as before), the record is written, and a bad region file
is refused with one line naming it."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import geovec
from geovec.data.scenes import NWPURESISC12
from tests.bench.formats import write_caption_dataset, write_class_folders, write_image, write_vhr10

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("train_global_head", REPO / "benchmarks" / "train_global_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    entries = [(f"scene_{i}.jpg", "train" if i < 6 else "val", [f"a scene number {i} view {k} ." for k in range(5)])
               for i in range(8)]
    write_caption_dataset(root / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    write_vhr10(root / "nwpu_vhr10")
    write_class_folders(root / "nwpu_resisc12", {c: [f"{c}_001.jpg"] for c in NWPURESISC12.classes})
    return root


@pytest.mark.slow
def test_the_script_adapts_the_image_head_only(data_root, tmp_path):
    out, results = tmp_path / "model", tmp_path / "record.json"
    record = _script().main(["--data-root", str(data_root), "--cache", str(tmp_path / "cache"), "--out", str(out),
                             "--revision", "test-head", "--results", str(results), "--steps", "4",
                             "--steps-per-epoch", "2", "--region-views", "id,hflip", "--sensor-views", "sensor0",
                             "--lr", "1e-2"])
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert json.loads(results.read_text())["model"] == "test-head"
    before, after = geovec.load_model(lazy=False), geovec.load_model(out, lazy=False)
    assert after.revision == "test-head"
    assert after.config.extra["global_path"]["from"]["image_head"] == "geovec.train.global_head"
    texts = ["a harbour with boats", {"lat": 52.1, "lon": 5.1}]
    np.testing.assert_allclose(after.encode(texts), before.encode(texts), atol=1e-6)
    image = [{"image": str(write_image(tmp_path / "x.jpg", 3, size=64))}]
    a, b = before.encode(image), after.encode(image)
    np.testing.assert_allclose(a[:, 384:], b[:, 384:], atol=1e-6)  # the encoder half is untouched
    assert np.abs(a[:, :384] - b[:, :384]).max() > 1e-3  # the global half moved
    changed = {n for n, t in after.state_dict().items() if not np.allclose(t.numpy(), before.state_dict()[n].numpy())}
    assert changed and all(n.startswith("global_path.image_head.") for n in changed), sorted(changed)[:5]


def test_a_bad_region_file_is_one_line_naming_it(data_root, tmp_path, capsys):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"image": "nowhere.png", "box": [1, 2, 3, 4], "class": "greenhouse"}\n')
    with pytest.raises(SystemExit) as e:
        _script().main(["--data-root", str(data_root), "--cache", str(tmp_path / "cache"), "--out",
                        str(tmp_path / "model"), "--revision", "x", "--regions", str(bad)])
    assert e.value.code == 2
    assert "--regions: mine.jsonl:1: image" in capsys.readouterr().err
