"""Search latency (p50/p95) and recall@10 of the index's ANN search against exact search.

Synthetic vectors (dimension of the default model, 384): a mixture of Gaussian clusters on the unit sphere,
like embeddings of an archive (many near-duplicate chips). Queries are perturbed database vectors. The index
is built with the same code as `geovec index build` (ChipStore.ensure_indices: IVF_HNSW_SQ, cosine), queries
go through the same `search_vector` as `geovec search`. Ground truth: exact cosine top-10 (numpy). Baseline
in the same process: LanceDB exact scan (bypass_vector_index) on the same table.

    python benchmarks/search_ann.py --sizes 100000 1000000 --queries 200
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make torch ~15x slower on this oversubscribed 2-core machine when
# called from the main thread (measured: 1.0 vs 24 text encodes/s); passive waiting removes the effect.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from geovec.index.search import SearchQuery, search_vector
from geovec.index.store import ChipStore, IndexInfo, chip_schema

DIM = 384
OUT = Path(__file__).parent / "results" / "search_ann.json"


def synthetic(n: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    out = np.empty((n, DIM), np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        lab = rng.integers(0, clusters, m)
        out[s : s + m] = centres[lab] + 0.6 * rng.standard_normal((m, DIM)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rows(vectors: np.ndarray, start: int, rng) -> pa.Table:
    n = len(vectors)
    lat = rng.uniform(50, 54, n)
    lon = rng.uniform(3, 8, n)
    null_f = pa.nulls(n, pa.float64())
    cols = {
        "id": pa.array([f"synthetic#{i}" for i in range(start, start + n)]),
        "path": pa.array(["synthetic"] * n),
        "window_col": pa.array(np.zeros(n, np.int32)), "window_row": pa.array(np.zeros(n, np.int32)),
        "window_width": pa.array(np.full(n, 256, np.int32)), "window_height": pa.array(np.full(n, 256, np.int32)),
        "bands": pa.nulls(n, pa.string()),
        "min_lon": pa.array(lon - 0.01), "min_lat": pa.array(lat - 0.01),
        "max_lon": pa.array(lon + 0.01), "max_lat": pa.array(lat + 0.01),
        "centre_lat": pa.array(lat), "centre_lon": pa.array(lon),
        "footprint": pa.nulls(n, pa.binary()), "datetime": pa.nulls(n, pa.timestamp("us")),
        "model_id": pa.array(["synthetic"] * n), "file_sig": pa.array(["0"] * n),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
    }
    del null_f
    return pa.table(cols, schema=chip_schema(DIM))


def percentiles(ts: list[float]) -> dict:
    a = np.asarray(ts) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def run(n: int, n_queries: int, n_exact: int, workdir: Path) -> dict:
    print(f"--- {n} vectors", flush=True)
    rng = np.random.default_rng(1)
    base = synthetic(n, clusters=max(100, n // 1000))
    db = workdir / f"db{n}"
    store = ChipStore.create(db, IndexInfo(model_id="synthetic", revision="0", dimension=DIM))
    t = time.perf_counter()
    for s in range(0, n, 100_000):
        store.add(rows(base[s : s + 100_000], s, rng))
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    store.ensure_indices(min_rows=1)
    t_index = time.perf_counter() - t
    print(f"load {t_load:.1f}s, ANN index {t_index:.1f}s", flush=True)
    qi = rng.choice(n, n_queries, replace=False)
    queries = base[qi] + 0.05 * rng.standard_normal((n_queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = []
    for s in range(0, n_queries, 50):
        sims = queries[s : s + 50] @ base.T
        truth.extend(np.argpartition(-sims, 10, axis=1)[:, :10].tolist())
    q = SearchQuery(text="-", k=10)
    search_vector(store, queries[0], q)  # warm up (index into cache)
    ann_t, recall = [], []
    for i, v in enumerate(queries):
        t = time.perf_counter()
        hits = search_vector(store, v, q)
        ann_t.append(time.perf_counter() - t)
        got = {int(h.id.split("#")[1]) for h in hits}
        recall.append(len(got & set(truth[i])) / 10)
    qe = SearchQuery(text="-", k=10, exact=True)
    ex_t, ex_recall = [], []
    for i, v in enumerate(queries[:n_exact]):
        t = time.perf_counter()
        hits = search_vector(store, v, qe)
        ex_t.append(time.perf_counter() - t)
        ex_recall.append(len({int(h.id.split("#")[1]) for h in hits} & set(truth[i])) / 10)
    # with a spatial pre-filter (a 1x1 degree box, ~5% of the rows)
    qb = SearchQuery(text="-", k=10, bbox=(5.0, 51.5, 6.0, 52.5))
    box_t = []
    for v in queries[:50]:
        t = time.perf_counter()
        search_vector(store, v, qb)
        box_t.append(time.perf_counter() - t)
    res = {"vectors": n, "dim": DIM, "queries": n_queries, "index": "IVF_HNSW_SQ cosine (ChipStore.ensure_indices)",
           "load_s": round(t_load, 1), "index_build_s": round(t_index, 1),
           "ann": {**percentiles(ann_t), "recall_at_10": round(float(np.mean(recall)), 4)},
           "exact_lancedb_scan": {**percentiles(ex_t), "queries": n_exact,
                                  "recall_at_10": round(float(np.mean(ex_recall)), 4)},
           "ann_with_bbox_prefilter": percentiles(box_t)}
    print(json.dumps(res, indent=1), flush=True)
    shutil.rmtree(db, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-queries", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="geovec-ann-"))
    results = {"benchmark": "search_ann", "data": "synthetic clustered unit vectors", "cpu": platform.processor() or platform.machine(),
               "cores_note": "2 shared CPU cores", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "runs": []}
    for n in args.sizes:
        results["runs"].append(run(n, args.queries, args.exact_queries, work))
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
