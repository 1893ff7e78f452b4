"""The README's main job, `geovec demo`, on a data root laid out like ../shared/data."""

import numpy as np
from rasterio.transform import from_origin
from typer.testing import CliRunner

import geovec
from geovec.cli import app
from tests.conftest import scene, write_geotiff


def test_demo_indexes_and_searches(tmp_path, model, monkeypatch):
    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: model)
    lr, hr = tmp_path / "data" / "rsvqa_lr" / "Images_LR", tmp_path / "data" / "rsvqa_hr" / "Data"
    lr.mkdir(parents=True)
    hr.mkdir(parents=True)
    # two Sentinel-2-like scenes near Venlo and one orthophoto on Long Island, in EPSG:3857 like the real ones
    write_geotiff(lr / "0.tif", "EPSG:3857", from_origin(686000, 6684000, 15.8, 15.8), np.moveaxis(scene(1, 256), -1, 0))
    write_geotiff(lr / "1.tif", "EPSG:3857", from_origin(690000, 6690000, 15.8, 15.8), np.moveaxis(scene(2, 256), -1, 0))
    write_geotiff(hr / "0.tif", "EPSG:3857", from_origin(-8160000, 5030000, 0.2, 0.2), np.moveaxis(scene(3, 512), -1, 0))
    res = CliRunner().invoke(app, ["demo", "--data-root", str(tmp_path / "data"), "--db", str(tmp_path / "db")])
    assert res.exit_code == 0, res.output
    assert "index: 6 chips (6 embedded now" in res.output  # 1 + 1 + 4 chips of 256 px
    assert "within 30 km of Venlo" in res.output and " km" in res.output.split("Venlo")[1]
    assert res.output.count("rsvqa_") >= 6
    missing = CliRunner().invoke(app, ["demo", "--data-root", str(tmp_path / "nothing"), "--db", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "rsvqa_lr/Images_LR" in missing.output
