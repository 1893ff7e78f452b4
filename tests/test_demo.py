"""The README's main job, `geovec demo`, on a data root laid out like ../shared/data."""

import json

import numpy as np
from rasterio.transform import from_origin
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from tests.conftest import scene, write_geotiff


def _multispectral(seed: int, size: int, bands: int) -> np.ndarray:
    """A Sentinel-2-like uint16 stack: the scene's RGB as B4/B3/B2 (DN 0-3000), noise elsewhere."""
    rgb = np.moveaxis(scene(seed, size), -1, 0).astype(np.uint16) * 3000 // 255
    out = np.random.default_rng(seed).integers(0, 4000, (bands, size, size)).astype(np.uint16)
    out[3], out[2], out[1] = rgb  # 1-based bands 4, 3, 2 = R, G, B
    return out


def _data_root(tmp_path):
    root = tmp_path / "data"
    lr, hr = root / "rsvqa_lr" / "Images_LR", root / "rsvqa_hr" / "Data"
    lr.mkdir(parents=True)
    hr.mkdir(parents=True)
    # two Sentinel-2-like scenes near Venlo and one orthophoto on Long Island, in EPSG:3857 like the real ones
    write_geotiff(lr / "0.tif", "EPSG:3857", from_origin(686000, 6684000, 15.8, 15.8), np.moveaxis(scene(1, 256), -1, 0))
    write_geotiff(lr / "1.tif", "EPSG:3857", from_origin(690000, 6690000, 15.8, 15.8), np.moveaxis(scene(2, 256), -1, 0))
    write_geotiff(hr / "0.tif", "EPSG:3857", from_origin(-8160000, 5030000, 0.2, 0.2), np.moveaxis(scene(3, 512), -1, 0))
    # EuroSAT-MS: 64x64, 13 bands, UTM, one folder per class; SatCLIP: 256x256, 12 bands
    for cls, seed in (("SeaLake", 4), ("SeaLake", 5), ("Forest", 6)):
        d = root / "eurosat_ms" / cls
        d.mkdir(parents=True, exist_ok=True)
        write_geotiff(d / f"{cls}_{seed}.tif", "EPSG:32632", from_origin(300000 + 1000 * seed, 5800000, 10, 10),
                      _multispectral(seed, 64, 13))
    sat = root / "satclip_s2" / "example_s2"
    sat.mkdir(parents=True)
    write_geotiff(sat / "patch_1.tif", "EPSG:32633", from_origin(400000, 5500000, 10, 10), _multispectral(7, 256, 12))
    return root


def test_demo_indexes_all_samples_and_searches(tmp_path, model, monkeypatch):
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: model)
    root = _data_root(tmp_path)
    res = CliRunner().invoke(app, ["demo", "--data-root", str(root), "--db", str(tmp_path / "db")])
    assert res.exit_code == 0, res.output
    out = res.output
    # 1 + 1 (LR) + 4 (HR 512 px) + 3 (EuroSAT, a chip each) + 1 (SatCLIP) chips of 256 px
    assert "index: 10 chips (10 embedded now" in out
    for folder, n in (("rsvqa_lr/Images_LR", 2), ("rsvqa_hr/Data", 1), ("eurosat_ms", 3), ("satclip_s2", 1)):
        assert f"  {folder}: {n} GeoTIFFs" in out
    assert "within 30 km of Venlo" in out and " km" in out.split("Venlo")[1]
    assert "find similar: the top-left quarter of" in out and "that chip itself is at rank 1" in out
    assert "more like this: the stored chip of" in out and "(EuroSAT class SeaLake)" in out
    like_block = out.split("more like this:")[1]
    assert "1.000" in like_block.split("\n")[1]  # rank 1: the chip itself, score 1
    assert "geovec serve --db" in out and "http://127.0.0.1:8000/" in out
    assert out.count("rsvqa_") >= 6
    # a rerun reuses the index; --format json gives every query
    res = CliRunner().invoke(app, ["demo", "--data-root", str(root), "--db", str(tmp_path / "db"), "--format", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["chips"] == 10 and report["datasets"] == {"rsvqa_lr/Images_LR": 2, "rsvqa_hr/Data": 1,
                                                            "eurosat_ms": 3, "satclip_s2": 1}
    assert len(report["queries"]) == 5 and all(q["hits"] for q in report["queries"])


def test_demo_without_samples(tmp_path):
    missing = CliRunner().invoke(app, ["demo", "--data-root", str(tmp_path / "nothing"), "--db", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "rsvqa_lr/Images_LR" in missing.output
