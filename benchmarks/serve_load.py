"""Server throughput (requests/s) of POST /v1/embeddings and POST /search under a bounded loopback load.

Starts `geovec serve`'s app with uvicorn on 127.0.0.1 (a free port; nothing leaves the machine), builds a
small index of the RSVQA-LR GeoTIFFs (shared/data, 51 scenes 256x256 -> 51 chips) with the real default
model (or a synthetic scene with --synthetic), then sends a fixed number of requests from C concurrent
clients and counts failures (any non-200). Baseline in the same process: the same work called directly
(model.encode / GeoIndex.search) without HTTP, one at a time.

    python benchmarks/serve_load.py [--requests 200] [--concurrency 4]
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make torch ~15x slower on this oversubscribed 2-core machine when
# called from the main thread (measured: 1.0 vs 24 text encodes/s); passive waiting removes the effect.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import asyncio
import json
import platform
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "serve_load.json"
TEXTS = ["a harbour with boats", "farmland next to a river", "a dense residential area", "an airport runway",
         "a forest", "solar panels on a field", "a motorway junction", "dunes along the coast"]


def data_root(arg):
    root = Path(arg or os.environ.get("GEOVEC_DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "data")
    return root if (root / "rsvqa_lr" / "Images_LR").exists() else None


async def load(url: str, payloads: list[dict], concurrency: int, timeout_s: float) -> dict:
    import httpx

    lat, fails = [], 0
    queue = list(enumerate(payloads))
    deadline = time.perf_counter() + timeout_s

    async def worker(client):
        nonlocal fails
        while queue and time.perf_counter() < deadline:
            _, body = queue.pop()
            t = time.perf_counter()
            try:
                r = await client.post(url, json=body)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t)
            fails += 0 if ok else 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    a = np.asarray(lat) * 1000
    return {"requests": len(lat), "failed": fails, "seconds": round(wall, 2), "requests_per_s": round(len(lat) / wall, 2),
            "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--requests", type=int, default=200, help="requests per endpoint (bounded load)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=120, help="stop sending after this long per endpoint")
    args = ap.parse_args()

    import uvicorn

    import geovec
    from geovec.index import GeoIndex
    from geovec.serve.app import create_app

    work = Path(tempfile.mkdtemp(prefix="geovec-bench-serve-"))
    root = None if args.synthetic else data_root(args.data_root)
    if root is not None:
        inputs, data = root / "rsvqa_lr" / "Images_LR", "shared/data rsvqa_lr/Images_LR (51 GeoTIFFs 256x256)"
    else:
        from index_build import synthetic_scene  # benchmarks/ is on sys.path when run as a script

        inputs, data = synthetic_scene(work / "scenes"), "synthetic"
    model = geovec.load_model()
    index = GeoIndex.build([inputs], work / "db", model, chip_size=256, progress=False)
    centre = index.store.table.to_arrow().to_pylist()[0]

    rng = np.random.default_rng(0)
    emb_payloads = [{"input": [TEXTS[i % len(TEXTS)]], "model": model.model_id} for i in range(args.requests)]
    search_payloads = []
    for i in range(args.requests):
        body = {"text": TEXTS[i % len(TEXTS)], "k": 10}
        if i % 2:
            body["near"] = {"lat": centre["centre_lat"] + rng.normal(0, 0.1), "lon": centre["centre_lon"] + rng.normal(0, 0.1)}
            body["within_km"] = 50
        search_payloads.append(body)

    # baseline: the same work without HTTP, sequential
    model.encode(["warm up"])
    t = time.perf_counter()
    for b in emb_payloads[:50]:
        model.encode(b["input"], show_progress_bar=False)
    base_emb = 50 / (time.perf_counter() - t)
    t = time.perf_counter()
    for b in search_payloads[:50]:
        near = (b["near"]["lat"], b["near"]["lon"]) if "near" in b else None
        index.search(text=b["text"], near=near, within_km=b.get("within_km"), k=10)
    base_search = 50 / (time.perf_counter() - t)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(work / "db", model), host="127.0.0.1", port=port,
                                           log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    emb = asyncio.run(load(base + "/v1/embeddings", emb_payloads, args.concurrency, args.max_seconds))
    srch = asyncio.run(load(base + "/search", search_payloads, args.concurrency, args.max_seconds))
    server.should_exit = True
    th.join(timeout=10)
    res = {"benchmark": "serve_load", "data": data, "chips": len(index), "model": f"{model.model_id}@{model.revision}",
           "cpu": platform.processor() or platform.machine(), "cores_note": "2 CPU cores shared with other jobs", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "concurrency": args.concurrency, "host": "127.0.0.1 (loopback only)",
           "v1_embeddings_text": {**emb, "baseline_in_process_per_s": round(base_emb, 2)},
           "search": {**srch, "baseline_in_process_per_s": round(base_search, 2)}}
    print(json.dumps(res, indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    assert emb["failed"] == 0 and srch["failed"] == 0, "failed requests under load"


if __name__ == "__main__":
    main()
