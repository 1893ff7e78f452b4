"""Issue 10, item 3: `geovec embed` writes GeoParquet 1.1 with the columns and footers of `geovec index export`
(one writer), read back with geopandas and DuckDB; GeoJSON rings are counter-clockwise (RFC 7946)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from PIL import Image
from rasterio.transform import from_origin
from typer.testing import CliRunner

from geovec.cli import app
from tests.conftest import scene, write_geotiff

runner = CliRunner()


@pytest.fixture
def inputs(tmp_path):
    """A UTM GeoTIFF (with a date), a 13-band Sentinel-2-like GeoTIFF, a PNG and a JSONL of a place + text item."""
    d = tmp_path / "in"
    d.mkdir()
    write_geotiff(d / "utm.tif", "EPSG:32632", from_origin(500_000, 5_800_000, 10, 10),
                  np.moveaxis(scene(1, 64), -1, 0))
    import rasterio

    with rasterio.open(d / "utm.tif", "r+") as ds:
        ds.update_tags(TIFFTAG_DATETIME="2024:06:01 10:30:00")
    s2 = np.random.default_rng(3).integers(0, 5000, (13, 32, 32)).astype(np.uint16)
    write_geotiff(d / "s2.tif", "EPSG:32633", from_origin(400_000, 5_600_000, 10, 10), s2)
    Image.fromarray(scene(2, 40)).save(d / "plain.png")
    (d / "items.jsonl").write_text(json.dumps({"id": "harbour", "text": "a harbour", "lat": 51.9, "lon": 4.5}) + "\n"
                                   + json.dumps({"id": "false-colour", "image": "s2.tif", "bands": [8, 4, 3]}) + "\n")
    return d


def _signed_area(ring):
    x, y = np.asarray(ring, float).T
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def test_embed_writes_geoparquet_read_back_by_geopandas(fake, inputs, tmp_path):
    gpd = pytest.importorskip("geopandas", reason="geopandas (dev extra) is not installed")
    out = tmp_path / "emb.parquet"
    r = runner.invoke(app, ["embed", str(inputs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = pq.read_schema(out).metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point", "Polygon"]
    assert col["covering"]["bbox"] == {"xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
                                       "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]}
    assert col["crs"]["id"] == {"authority": "EPSG", "code": 4326} and col["orientation"] == "counterclockwise"
    g = json.loads(meta[b"geovec"])
    assert (g["model_id"], g["revision"], g["dimension"], g["metric"]) == ("fake-geo", "test", 32, "cosine")

    gdf = gpd.read_parquet(out)
    assert gdf.crs.to_epsg() == 4326 and "bbox" not in gdf.columns
    rows = gdf.set_index("id")
    tif = rows.loc[str(inputs / "utm.tif")]
    assert tif.geometry.geom_type == "Polygon" and tif.geometry.exterior.is_ccw
    assert tif.geometry.contains(shapely.Point(tif["centre_lon"], tif["centre_lat"]))
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True).transform(500_320, 5_799_680)
    assert (tif["centre_lat"], tif["centre_lon"]) == pytest.approx((lat, lon), abs=1e-7)
    assert (tif["window_col"], tif["window_row"], tif["window_width"], tif["window_height"]) == (0, 0, 64, 64)
    assert str(tif["datetime"]).startswith("2024-06-01 10:30")
    assert tif["source_path"] == str(inputs / "utm.tif")
    place = rows.loc["harbour"]
    assert place.geometry.geom_type == "Point" and (place.geometry.x, place.geometry.y) == (4.5, 51.9)
    png = rows.loc[str(inputs / "plain.png")]
    assert png.geometry is None and np.isnan(png["centre_lat"]) and png["window_width"] == 40
    assert rows.loc["false-colour", "bands"] == "8,4,3" and not isinstance(rows.loc[str(inputs / "s2.tif"), "bands"], str)
    assert set(gdf["model_revision"]) == {"test"} and set(gdf["model_id"]) == {"fake-geo"}
    # the band choice changes the pixels, so the vector
    assert not np.allclose(rows.loc["false-colour", "embedding"], rows.loc[str(inputs / "s2.tif"), "embedding"])
    # bbox-filtered read through the covering column
    x, y = tif["centre_lon"], tif["centre_lat"]
    near = gpd.read_parquet(out, bbox=(x - 1e-3, y - 1e-3, x + 1e-3, y + 1e-3))
    assert list(near["id"]) == [str(inputs / "utm.tif")]


def test_embed_output_reads_in_duckdb(fake, inputs, tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb (dev extra) is not installed")
    out = tmp_path / "emb.parquet"
    assert runner.invoke(app, ["embed", str(inputs), "--out", str(out)]).exit_code == 0
    con = duckdb.connect()
    n, dim, revs = con.execute(f"SELECT count(*), max(len(embedding)), count(DISTINCT model_revision) "
                               f"FROM read_parquet('{out}')").fetchone()
    assert (n, dim, revs) == (5, 32, 1)
    hit = con.execute(f"SELECT id FROM read_parquet('{out}') WHERE bbox.xmin <= 4.5 AND bbox.xmax >= 4.5 AND "
                      f"bbox.ymin <= 51.9 AND bbox.ymax >= 51.9").fetchall()
    assert hit == [("harbour",)]
    kv = dict(con.execute(f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{out}')").fetchall())
    assert json.loads(kv["geo"])["primary_column"] == "geometry"
    assert json.loads(kv["geovec"])["written_by"] == "geovec embed"


def test_embed_and_index_export_have_the_same_columns_and_footer(fake, inputs, tmp_path):
    out = tmp_path / "emb.parquet"
    assert runner.invoke(app, ["embed", str(inputs), "--out", str(out)]).exit_code == 0
    db, exported = tmp_path / "db", tmp_path / "idx.parquet"
    r = runner.invoke(app, ["index", "build", str(inputs), "--db", str(db), "--chip-size", "32"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["index", "export", "--db", str(db), "--out", str(exported)]).exit_code == 0
    a, b = pq.read_schema(out), pq.read_schema(exported)
    assert a.names == b.names and [f.type for f in a] == [f.type for f in b]
    ga, gb = json.loads(a.metadata[b"geovec"]), json.loads(b.metadata[b"geovec"])
    for key in ("model_id", "revision", "dimension", "normalized", "metric", "task", "instruction",
                "with_location", "embedding_column", "row_order", "written_by"):
        assert key in ga and key in gb
    geo_a, geo_b = json.loads(a.metadata[b"geo"]), json.loads(b.metadata[b"geo"])
    assert set(geo_a["columns"]["geometry"]) == set(geo_b["columns"]["geometry"])
    # every exported footprint is counter-clockwise, and the same polygon as the chip's
    t = pq.read_table(exported)
    polys = [shapely.from_wkb(w) for w in t["geometry"].to_pylist() if w is not None]
    assert polys and all(p.exterior.is_ccw for p in polys)
    assert set(t["model_revision"].to_pylist()) == {"test"}


def test_a_rerun_onto_an_old_parquet_output_keeps_and_upgrades_its_rows(fake, inputs, tmp_path):
    out = tmp_path / "old.parquet"
    old_meta = {"model_id": "fake-geo", "revision": "test", "dimension": 32, "normalized": True}
    ring = "POLYGON ((8 52, 8 52.1, 8.1 52.1, 8.1 52, 8 52))"
    old = pa.table({"id": ["earlier"], "source": ["/gone/x.tif"],
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(32, np.float32)), 32),
                    "lat": [52.05], "lon": [8.05], "footprint": [ring], "model_id": ["fake-geo"]})
    pq.write_table(old.replace_schema_metadata({b"geovec": json.dumps(old_meta).encode()}), out)
    r = runner.invoke(app, ["embed", str(inputs / "plain.png"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    rows = {x["id"]: x for x in t.to_pylist()}
    assert set(rows) == {"earlier", str(inputs / "plain.png")}
    e = rows["earlier"]
    assert (e["centre_lat"], e["centre_lon"], e["source_path"]) == (52.05, 8.05, "/gone/x.tif")
    poly = shapely.from_wkb(e["geometry"])
    assert poly.exterior.is_ccw and poly.bounds == (8.0, 52.0, 8.1, 52.1)


def test_embed_bands_option(fake, inputs, tmp_path):
    out = tmp_path / "b.parquet"
    r = runner.invoke(app, ["embed", str(inputs / "s2.tif"), str(inputs / "plain.png"), "--bands", "8,4,3",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {x["id"]: x for x in pq.read_table(out).to_pylist()}
    assert rows[str(inputs / "s2.tif")]["bands"] == "8,4,3" and rows[str(inputs / "plain.png")]["bands"] is None
    expected = fake.encode([{"image": str(inputs / "s2.tif"), "bands": [8, 4, 3]}])[0]
    assert np.allclose(rows[str(inputs / "s2.tif")]["embedding"], expected, atol=1e-6)
    r = runner.invoke(app, ["embed", str(inputs / "s2.tif"), "--bands", "8,4", "--out", str(out)])
    assert r.exit_code == 2 and "--bands" in r.output
    r = runner.invoke(app, ["embed", str(inputs / "s2.tif"), "--bands", "14,4,3", "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 1 and "band 14 requested but the raster has 13" in r.output


def test_search_geojson_rings_are_counter_clockwise(fake, inputs, tmp_path):
    from geovec.index import GeoIndex

    idx = GeoIndex.build([inputs], tmp_path / "db", fake, chip_size=32, progress=False)
    gj = idx.search_geojson(text="anything", k=20)
    rings = [f["geometry"]["coordinates"][0] for f in gj["features"] if f["geometry"]]
    assert rings and all(r[0] == r[-1] and _signed_area(r) > 0 for r in rings)
    # the JSON hits' footprints are the same rings
    hits = idx.search(text="anything", k=20)
    assert all(_signed_area(h.footprint) > 0 for h in hits if h.footprint)
