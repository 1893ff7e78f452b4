"""The map's similarity heatmap at 100,000 chips: every chip scored against the query with its stored vector
(one matrix product, ``geovec.serve.heatmap.ChipScores``), sent as one byte per chip, drawn on a canvas.

Synthetic index: clustered unit vectors (d=384, as benchmarks/search_ann.py), chips of 0.02 degrees over
50-54 N, 3-8 E. Measured: the one-off read of vectors and boxes, scoring per query (in process), ``POST /search``
over loopback with and without ``heatmap`` (the baseline, same process and query: the search alone), the payload
sizes, and, when headless Chromium is installed, the page's canvas redraw with all chips in view.

    python benchmarks/map_heatmap.py [--chips 100000] [--queries 30]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_ann import DIM, percentiles, rows, synthetic  # noqa: E402  the same synthetic archive

OUT = Path(__file__).parent / "results" / "map_heatmap.json"


def build(n: int, db: Path):
    from geovec.index.store import ChipStore, IndexInfo

    store = ChipStore.create(db, IndexInfo(model_id="synthetic", revision="0", dimension=DIM))
    base, rng = synthetic(n, clusters=max(100, n // 1000)), np.random.default_rng(1)
    for s in range(0, n, 100_000):
        store.add(rows(base[s : s + 100_000], s, rng))
    return store


def in_process(store, n_queries: int) -> dict:
    from geovec.serve.heatmap import ChipScores

    scores = ChipScores(store)
    t = time.perf_counter()
    scores.load()
    load_s = time.perf_counter() - t
    rng = np.random.default_rng(2)
    queries = scores.vectors[rng.choice(len(scores.vectors), n_queries, replace=False)]
    ts = []
    for q in queries:
        t = time.perf_counter()
        h = scores.heatmap(q)
        ts.append(time.perf_counter() - t)
    return {"chips": h["count"], "first_load_s": round(load_s, 2), "score_and_quantise": percentiles(ts),
            "vectors_mb": round(scores.vectors.nbytes / 2**20, 1)}


def start_server(app):
    """uvicorn on a free loopback port, in a thread: (url, server)."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def over_http(store, n_queries: int) -> tuple[dict, str, object]:
    import httpx

    from geovec.serve.app import create_app

    # the app needs no model for "like" searches (stored vectors); this stands in for the index's model
    model = SimpleNamespace(model_id="synthetic", revision="0", embed_dim=DIM, config=None)
    url, server = start_server(create_app(store.path, model))
    ids = [f"synthetic#{i}" for i in np.random.default_rng(3).choice(len(store), n_queries, replace=False)]
    out = {}
    with httpx.Client(timeout=120) as c:
        c.post(url + "/search", json={"like": ids[0], "k": 10, "heatmap": True})  # warm: the one-off read
        for name, heat in (("baseline_search_only", False), ("search_with_heatmap", True)):
            ts, size = [], 0
            for i in ids:
                t = time.perf_counter()
                r = c.post(url + "/search", json={"like": i, "k": 10, "heatmap": heat})
                ts.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                size = len(r.content)
            out[name] = {**percentiles(ts), "response_bytes": size}
        out["boxes_bin_bytes"] = len(c.get(url + "/heatmap/boxes.bin").content)
    return out, url, server


def in_browser(url: str, chip: int) -> dict | None:
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        t = time.perf_counter()
        d.get(url + f"/#like=synthetic%23{chip}&k=10&heat=1&map=6/52/5.5")
        WebDriverWait(d, 600).until(lambda d: d.execute_script("return geovec.state.searches") >= 1
                                    and d.execute_script("return !!(geovec.layers.heat && geovec.layers.heat.lastDraw)"))
        first = time.perf_counter() - t
        redraws = d.execute_script(
            "const h = geovec.layers.heat, out = []; for (let i = 0; i < 20; i++) { h.redraw(); out.push(h.lastDraw.ms); }"
            " return [out, h.lastDraw.drawn];")
        search = d.execute_script(
            "const t = performance.now(); return geovec.runSearch({keepView: true}).then(() => performance.now() - t);")
        ms = np.asarray(redraws[0])
        return {"chips_drawn": redraws[1], "canvas_redraw_ms_p50": round(float(np.median(ms)), 1),
                "canvas_redraw_ms_max": round(float(ms.max()), 1), "page_search_and_heatmap_ms": round(search, 1),
                "page_load_to_heatmap_s": round(first, 1)}
    finally:
        d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chips", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = build(args.chips, Path(tmp) / "db")
        print(f"{args.chips} chips written in {time.perf_counter() - t:.1f} s", flush=True)
        result = {"chips": args.chips, "dimension": DIM, "queries": args.queries}
        result["in_process"] = in_process(store, args.queries)
        print(json.dumps(result["in_process"]), flush=True)
        http, url, server = over_http(store, args.queries)
        result["http"] = http
        print(json.dumps(http), flush=True)
        try:
            result["browser"] = in_browser(url, args.chips // 2)
            print(json.dumps(result["browser"]), flush=True)
        finally:
            server.should_exit = True
    result["machine"] = f"{platform.machine()} (2 shared cores), exact search (no ANN index)"
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
