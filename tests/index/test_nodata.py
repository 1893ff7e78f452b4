"""Issue 26, item 4: chips entirely nodata (declared nodata value, alpha band, NaN) are skipped and counted;
chips partly nodata are kept with their nodata fraction stored. On a generated Sentinel-2-like scene whose
swath edge is nodata=0, and alpha and NaN variants."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from geovec.index.build import build_index
from geovec.index.chips import ChipSpec, grid_windows
from geovec.index.export import export_geoparquet
from geovec.index.store import ChipStore
from geovec.inputs import GeoVecInputError
from geovec.inputs.raster import read_tiff
from geovec.inputs.scaling import NODATA_PROBLEM
from tests.index.geovec_fake_model import FakeGeoModel

SIZE, CHIP = 128, 32


def swath_mask(size: int = SIZE) -> np.ndarray:
    """True where the scene has data: right of a slanted swath edge (the top-left corner is outside it)."""
    rows, cols = np.mgrid[0:size, 0:size]
    return cols + rows // 2 >= 70


def write_scene(path, kind: str):
    """A 128 x 128 scene in UTM 31N: ``nodata`` a Sentinel-2 L2A-like 3 x uint16 file (nodata=0 outside the
    swath), ``alpha`` RGBA uint8 (alpha 0 outside), ``nan`` 3 x float32 (NaN outside, no declared nodata)."""
    rng = np.random.default_rng(11)
    valid = swath_mask()
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, crs="EPSG:32631",
                   transform=from_origin(600_000, 5_800_000, 10.0, 10.0), tiled=True, blockxsize=32, blockysize=32)
    if kind == "nodata":
        data = rng.integers(1, 4000, (3, SIZE, SIZE)).astype(np.uint16)
        data[:, ~valid] = 0
        profile.update(count=3, dtype="uint16", nodata=0, compress="deflate")
    elif kind == "alpha":
        rgb = rng.integers(0, 255, (3, SIZE, SIZE)).astype(np.uint8)
        data = np.concatenate([rgb, (valid * 255).astype(np.uint8)[None]])
        profile.update(count=4, dtype="uint8", photometric="RGB", alpha="YES")  # ExtraSamples = alpha
    else:
        data = rng.random((3, SIZE, SIZE)).astype(np.float32)
        data[:, ~valid] = np.nan
        profile.update(count=3, dtype="float32")
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        ds.update_tags(SPACECRAFT_NAME="Sentinel-2A")
    if kind == "alpha":
        with rasterio.open(path) as ds:
            assert ds.colorinterp[3] == ColorInterp.alpha
    return path


def expected_fractions() -> dict[tuple, float]:
    """Window -> nodata fraction of every chip that has at least one valid pixel."""
    valid = swath_mask()
    out = {}
    for c, r, w, h in grid_windows(SIZE, SIZE, ChipSpec(CHIP)):
        v = valid[r : r + h, c : c + w]
        if v.any():
            out[(c, r, w, h)] = 1.0 - v.mean()
    return out


@pytest.mark.parametrize("kind", ["nodata", "alpha", "nan"])
def test_all_nodata_chips_are_skipped_and_partial_ones_keep_their_fraction(tmp_path, kind):
    path = write_scene(tmp_path / f"S2A_MSIL2A_{kind}.tif", kind)
    expected = expected_fractions()
    n_chips = len(grid_windows(SIZE, SIZE, ChipSpec(CHIP)))
    assert 0 < len(expected) < n_chips and any(0 < f < 1 for f in expected.values())  # the fixture is as meant
    s = build_index([path], tmp_path / "db", FakeGeoModel(), ChipSpec(CHIP), progress=False)
    assert s.chips_empty == n_chips - len(expected) and not s.failed
    rows = ChipStore(tmp_path / "db").table.to_arrow().to_pylist()
    got = {(r["window_col"], r["window_row"], r["window_width"], r["window_height"]): r["nodata_fraction"]
           for r in rows}
    assert set(got) == set(expected)
    for w, f in expected.items():
        assert got[w] == pytest.approx(f, abs=1e-6), w
    exported = pq.read_table(export_geoparquet(ChipStore(tmp_path / "db"), tmp_path / "x.parquet")).to_pylist()
    assert {r["id"]: r["nodata_fraction"] for r in exported} == {r["id"]: r["nodata_fraction"] for r in rows}
    # no two chips share a vector: nothing was embedded as a uniform black square
    vecs = np.array([r["vector"] for r in rows])
    cos = vecs @ vecs.T
    assert (cos[~np.eye(len(vecs), dtype=bool)] < 0.999).all()


@pytest.mark.parametrize("kind", ["nodata", "alpha", "nan"])
def test_read_tiff_marks_nodata_black_and_refuses_a_window_without_data(tmp_path, kind):
    path = write_scene(tmp_path / f"scene_{kind}.tif", kind)
    with pytest.raises(GeoVecInputError, match=NODATA_PROBLEM):
        read_tiff(path, window=(0, 0, 32, 32))  # wholly outside the swath
    img = read_tiff(path, window=(32, 32, 32, 32))  # crossed by the swath edge
    valid = swath_mask()[32:64, 32:64]
    assert img.nodata_fraction == pytest.approx(1 - valid.mean())
    assert (img.pixels[~valid] == 0).all() and img.pixels[valid].any()
    assert read_tiff(path, window=(96, 96, 32, 32)).nodata_fraction == 0.0


def test_the_build_summary_names_the_skipped_nodata_chips(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import geovec
    from geovec.cli import app

    monkeypatch.setattr(geovec, "load_model", lambda *a, **k: FakeGeoModel())
    path = write_scene(tmp_path / "S2A_MSIL2A_edge.tif", "nodata")
    r = CliRunner().invoke(app, ["index", "build", str(path), "--db", str(tmp_path / "db"), "--chip-size", "32"])
    assert r.exit_code == 0, r.output
    n_empty = len(grid_windows(SIZE, SIZE, ChipSpec(CHIP))) - len(expected_fractions())
    assert f"skipped {n_empty} chip(s) with no valid pixel" in " ".join(r.output.split())


def write_png(path, kind: str):
    """The scene's swath as an 8-bit PNG: ``rgba`` (alpha 0 outside the swath) or ``palette`` (a palette image
    whose transparent index fills the outside)."""
    from PIL import Image

    rng = np.random.default_rng(5)
    valid = swath_mask()
    rgb = rng.integers(1, 255, (SIZE, SIZE, 3)).astype(np.uint8)
    if kind == "rgba":
        Image.fromarray(np.dstack([rgb, (valid * 255).astype(np.uint8)]), "RGBA").save(path)
    else:
        idx = rng.integers(1, 255, (SIZE, SIZE)).astype(np.uint8)
        idx[~valid] = 0
        im = Image.fromarray(idx, "P")
        im.putpalette(rng.integers(0, 255, 768).astype(np.uint8).tolist())
        im.save(path, transparency=0)
    return path


@pytest.mark.parametrize("kind", ["rgba", "palette"])
def test_transparent_png_pixels_are_nodata_like_a_tiff_alpha_band(tmp_path, kind):
    from geovec.inputs import read_image

    path = write_png(tmp_path / f"ortho_{kind}.png", kind)
    img = read_image(path)
    valid = swath_mask()
    assert img.nodata_fraction == pytest.approx(1 - valid.mean())
    assert (img.pixels[~valid] == 0).all() and img.pixels[valid].any()
    s = build_index([path], tmp_path / "db", FakeGeoModel(), ChipSpec(CHIP), progress=False)
    expected = expected_fractions()
    assert s.chips_empty == len(grid_windows(SIZE, SIZE, ChipSpec(CHIP))) - len(expected) and not s.failed
    rows = ChipStore(tmp_path / "db").table.to_arrow().to_pylist()
    got = {(r["window_col"], r["window_row"], r["window_width"], r["window_height"]): r["nodata_fraction"]
           for r in rows}
    assert got.keys() == expected.keys()
    for w, f in expected.items():
        assert got[w] == pytest.approx(f, abs=1e-6), w


def test_a_fully_transparent_image_is_refused_by_name(tmp_path):
    from PIL import Image

    from geovec.inputs import read_image

    path = tmp_path / "blank.png"
    Image.new("RGBA", (16, 16), (10, 20, 30, 0)).save(path)
    with pytest.raises(GeoVecInputError, match=f"{NODATA_PROBLEM}: every pixel is transparent") as e:
        read_image(path)
    assert "blank.png" in str(e.value)
    opaque = read_image(Image.new("RGBA", (16, 16), (10, 20, 30, 255)))
    assert opaque.nodata_fraction == 0.0 and opaque.valid is None and (opaque.pixels == (10, 20, 30)).all()
