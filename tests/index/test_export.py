import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from geovec.index import GeoIndex
from geovec.index.export import hilbert_index, hilbert_order

from tests.index.geovec_fake_model import FakeGeoModel


def test_hilbert_index_small_curve():
    # order-1 curve visits (0,0), (0,1), (1,1), (1,0); order-2 is a continuous path over 16 cells
    assert hilbert_index(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), order=1).tolist() == [0, 1, 2, 3]
    xs, ys = np.meshgrid(np.arange(4), np.arange(4))
    d = hilbert_index(xs.ravel(), ys.ravel(), order=2)
    assert sorted(d.tolist()) == list(range(16))
    path = np.stack([xs.ravel(), ys.ravel()], 1)[np.argsort(d)]
    assert np.all(np.abs(np.diff(path, axis=0)).sum(1) == 1)  # neighbours on the curve are grid neighbours


@pytest.fixture
def exported(scenes, tmp_path):
    idx = GeoIndex.build([scenes], tmp_path / "db", FakeGeoModel(), chip_size=64, progress=False)
    return idx, idx.export_geoparquet(tmp_path / "out" / "chips.parquet")


def test_geoparquet_metadata_and_columns(exported):
    idx, path = exported
    f = pq.ParquetFile(path)
    meta = f.schema_arrow.metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Polygon"]
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    g = json.loads(meta[b"geovec"])
    assert g["model_id"] == "fake-geo" and g["dimension"] == 32 and g["normalized"] is True
    assert g["instruction"] == idx.info.instruction
    schema = f.schema_arrow
    import pyarrow as pa

    emb = schema.field("embedding").type
    assert pa.types.is_fixed_size_list(emb) and emb.list_size == 32 and emb.value_type == pa.float32()
    for name in ("id", "geometry", "bbox", "centre_lat", "centre_lon", "datetime", "source_path", "model_id",
                 "model_revision", "window_col"):
        assert name in schema.names
    t = f.read()
    assert t.num_rows == len(idx)
    # rows follow the Hilbert curve over chip centres (unplaced chips last)
    lon, lat = t["centre_lon"].to_numpy(zero_copy_only=False), t["centre_lat"].to_numpy(zero_copy_only=False)
    assert np.array_equal(hilbert_order(lon, lat), np.arange(t.num_rows))


def test_geoparquet_reads_in_geopandas(exported):
    gpd = pytest.importorskip("geopandas", reason="geopandas (optional) is not installed")
    idx, path = exported
    gdf = gpd.read_parquet(path)
    assert gdf.crs.to_epsg() == 4326
    assert "bbox" not in gdf.columns  # geopandas recognises the 1.1 covering column and drops it on read
    raw = pq.read_table(path).to_pandas()
    placed = gdf[gdf.geometry.notna()]
    bounds = placed.geometry.bounds
    assert np.allclose(bounds["minx"], raw.loc[placed.index, "bbox"].map(lambda b: b["xmin"]))
    assert np.allclose(bounds["maxy"], raw.loc[placed.index, "bbox"].map(lambda b: b["ymax"]))
    c = placed.geometry.centroid
    assert np.allclose(c.x, placed["centre_lon"], atol=1e-3) and np.allclose(c.y, placed["centre_lat"], atol=1e-3)
    lat, lon = placed["centre_lat"].iloc[0], placed["centre_lon"].iloc[0]
    box = gpd.read_parquet(path, bbox=(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001))
    assert 0 < len(box) < len(gdf) and placed["id"].iloc[0] in set(box["id"])


def test_geoparquet_reads_in_duckdb(exported):
    duckdb = pytest.importorskip("duckdb", reason="duckdb (dev extra) is not installed")
    idx, path = exported
    con = duckdb.connect()
    n, dim = con.execute(f"SELECT count(*), max(len(embedding)) FROM read_parquet('{path}')").fetchone()
    assert n == len(idx) and dim == 32
    lat, lon = con.execute(f"SELECT centre_lat, centre_lon FROM read_parquet('{path}') LIMIT 1").fetchone()
    inside = con.execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE bbox.xmin <= {lon} + 0.001 AND "
                         f"bbox.xmax >= {lon} - 0.001 AND bbox.ymin <= {lat} + 0.001 AND bbox.ymax >= {lat} - 0.001"
                         ).fetchone()[0]
    assert 0 < inside < n
    kv = dict(con.execute(f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{path}')").fetchall())
    assert json.loads(kv["geovec"])["model_id"] == "fake-geo" and "geo" in kv
