"""Issue 26, item 4: footprints that cross the antimeridian are valid MultiPolygons split at 180 degrees with
longitudes in [-180, 180] (RFC 7946) in LanceDB, GeoParquet and GeoJSON, and bbox filters work across 180."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from geovec.index.build import build_index
from geovec.index.chips import ChipSpec
from geovec.index.export import export_geojson, export_geoparquet
from geovec.index.search import SearchQuery, hits_to_geojson, prefilter_sql, search_vector
from geovec.index.store import ChipStore
from geovec.inputs.footprint import continuous_ring, footprint_geometry, ring_bbox, wrap_lon
from tests.index.geovec_fake_model import FakeGeoModel, write_dateline_scenes

SPEC = ChipSpec(32)
GULF_OF_GUINEA = (-5.0, -3.0, 8.0, 6.0)


@pytest.fixture
def dateline(tmp_path):
    """Two rasters straddling 180 degrees (:func:`write_dateline_scenes`)."""
    return write_dateline_scenes(tmp_path / "dateline")


def _rows(db):
    return ChipStore(db).table.to_arrow().to_pylist()


def test_index_footprints_are_valid_and_split_at_180(dateline, tmp_path):
    build_index([dateline], tmp_path / "db", FakeGeoModel(), SPEC, progress=False)
    rows = _rows(tmp_path / "db")
    assert len(rows) == 3 * 2 + 3 * 1
    split = 0
    for r in rows:
        g = shapely.from_wkb(r["footprint"])
        assert g.is_valid, r["id"]
        x0, _, x1, _ = g.bounds
        assert -180 <= x0 and x1 <= 180 and -180 <= r["centre_lon"] <= 180
        assert g.area < 0.5, f"{r['id']} spans the world: {g.bounds}"
        if g.geom_type == "MultiPolygon":
            split += 1
            assert r["min_lon"] > r["max_lon"]  # west > east: the bbox crosses 180 (RFC 7946)
            assert {round(abs(b), 6) for p in g.geoms for b in (p.bounds[0], p.bounds[2])} >= {180.0}
        else:
            assert r["min_lon"] <= r["max_lon"]
    # the middle column of each scene crosses 180 degrees; the others lie on one side
    assert split == 2 + 1
    wgs = [r for r in rows if r["path"].endswith("wgs84.tif")]
    assert sorted(round(r["centre_lon"], 4) for r in wgs) == [-179.6667, 179.6667, 180.0]


def test_bbox_filters_do_not_return_dateline_chips_in_the_gulf_of_guinea(dateline, tmp_path):
    model = FakeGeoModel()
    build_index([dateline], tmp_path / "db", model, SPEC, progress=False)
    store = ChipStore(tmp_path / "db")
    vec = model.encode([{"text": "anything"}], show_progress_bar=False)[0]

    def ids(bbox):
        return {h.id for h in search_vector(store, vec, SearchQuery(text="x", bbox=bbox, k=100, exact=True))}

    everything = {r["id"] for r in _rows(tmp_path / "db")}
    assert ids(GULF_OF_GUINEA) == set()
    assert ids((170.0, -10.0, -170.0, 10.0)) == everything  # a query box across 180
    east = ids((-179.99, -10.0, -170.0, 10.0))  # east of 180 only: the split chips and those beyond
    west = ids((170.0, -10.0, 179.99, 10.0))
    assert east and west and east != everything and west != everything
    assert east & west == {r["id"] for r in _rows(tmp_path / "db") if r["min_lon"] > r["max_lon"]}
    assert store.table.count_rows(prefilter_sql(SearchQuery(bbox=GULF_OF_GUINEA))) == 0


def test_geoparquet_and_geojson_exports_are_rfc7946(dateline, tmp_path):
    model = FakeGeoModel()
    build_index([dateline], tmp_path / "db", model, SPEC, progress=False)
    store = ChipStore(tmp_path / "db")
    out = export_geoparquet(store, tmp_path / "chips.parquet")
    t = pq.read_table(out)
    geo = json.loads(pq.read_schema(out).metadata[b"geo"])
    assert set(geo["columns"]["geometry"]["geometry_types"]) == {"Polygon", "MultiPolygon"}
    for wkb, box in zip(t["geometry"].to_pylist(), t["bbox"].to_pylist()):
        g = shapely.from_wkb(wkb)
        assert g.is_valid and -180 <= g.bounds[0] and g.bounds[2] <= 180
        assert box["xmin"] <= box["xmax"]  # the covering is planar: readers re-check the geometry
        parts = g.geoms if g.geom_type == "MultiPolygon" else [g]
        assert all(shapely.is_ccw(p.exterior) for p in parts)
    hits = search_vector(store, model.encode([{"text": "x"}], show_progress_bar=False)[0],
                         SearchQuery(text="x", k=100, exact=True))
    doc = json.loads(json.dumps(hits_to_geojson(hits)))
    types = set()
    for f in doc["features"]:
        g = shapely.geometry.shape(f["geometry"])
        types.add(g.geom_type)
        assert g.is_valid and -180 <= g.bounds[0] and g.bounds[2] <= 180
    assert types == {"Polygon", "MultiPolygon"}
    chips = json.loads(export_geojson(store, tmp_path / "chips.geojson").read_text())["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in chips]
    assert len(shapes) == 9 and {g.geom_type for g in shapes} == {"Polygon", "MultiPolygon"}
    assert all(g.is_valid and -180 <= g.bounds[0] and g.bounds[2] <= 180 and g.area < 0.5 for g in shapes)
    # a hit's footprint ring is the chip outline, continuous across 180, with the area of the split geometry
    for h in hits:
        assert abs(shapely.Polygon(h.footprint).area - shapely.geometry.shape(h.geometry).area) < 1e-9


def test_embed_writes_a_split_footprint_for_a_raster_past_180(dateline, tmp_path):
    from geovec.embed.job import EmbedJob
    from geovec.embed.sources import iter_records

    out = tmp_path / "emb.parquet"
    EmbedJob(FakeGeoModel(), out).run(iter_records([dateline / "wgs84.tif"]), progress=False)
    row = pq.read_table(out).to_pylist()[0]
    g = shapely.from_wkb(row["geometry"])
    assert g.geom_type == "MultiPolygon" and g.is_valid
    assert np.isclose(g.area, 1.0 * (1 / 3), atol=1e-6)  # 1 x 1/3 degree, nothing world-spanning
    assert -180 <= row["centre_lon"] <= 180


@pytest.mark.parametrize("ring, bbox", [
    ([(179.5, 0), (180.5, 0), (180.5, 1), (179.5, 1), (179.5, 0)], (179.5, 0, -179.5, 1)),
    ([(179.5, 0), (-179.5, 0), (-179.5, 1), (179.5, 1), (179.5, 0)], (179.5, 0, -179.5, 1)),
    ([(181.0, 0), (182.0, 0), (182.0, 1), (181.0, 1), (181.0, 0)], (-179.0, 0, -178.0, 1)),
    ([(10.0, 0), (11.0, 0), (11.0, 1), (10.0, 1), (10.0, 0)], (10.0, 0, 11.0, 1)),
])
def test_footprint_geometry_and_bbox(ring, bbox):
    assert np.allclose(ring_bbox(ring), bbox)
    g = footprint_geometry(ring)
    assert g.is_valid and np.isclose(g.area, 1.0) and -180 <= g.bounds[0] and g.bounds[2] <= 180
    assert np.isclose(shapely.Polygon(continuous_ring(g)).area, 1.0)
    assert wrap_lon(180.0) == 180.0 and wrap_lon(180.25) == -179.75 and wrap_lon(-540.0) == -180.0
