"""A small loopback soak of the server (the code of `benchmarks/serve_load.py --soak`, which runs the full
20 clients x 50 requests against a real `geovec serve`): mixed valid and invalid requests, every answer has
its expected status, no 5xx, /healthz stays 200."""

import asyncio
import importlib.util
import os
import socket
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


@pytest.fixture(scope="module")
def serve_load():
    spec = importlib.util.spec_from_file_location("serve_load_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_small_soak_keeps_every_promise(served, serve_load, tmp_path):
    import uvicorn

    from geovec.serve.app import create_app
    from geovec.serve.items import Limits

    db, _, model = served
    root = serve_load.soak_root(tmp_path / "root")
    app = create_app(db, model, Limits(roots=[root], max_request_bytes=serve_load.SOAK_MAX_REQUEST_BYTES))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    t = time.perf_counter()
    while not server.started:
        assert time.perf_counter() - t < 30
        time.sleep(0.05)
    try:
        res = asyncio.run(serve_load.soak(f"http://127.0.0.1:{port}", os.getpid(), clients=6, per_client=25,
                                          max_seconds=60))
    finally:
        server.should_exit = True
        th.join(timeout=10)
    assert res["requests_sent"] == 150 and not res["cut_short_by_deadline"]
    kinds = set(res["statuses_by_kind"])
    assert {"text", "bomb", "nan_dimensions", "oversized", "oversized_chunked", "healthz"} <= kinds
    print({k: res[k] for k in ("seconds", "requests_per_s", "p50_ms", "p95_ms", "rss_mb")})
    assert serve_load.soak_ok(res, max_growth_mb=200) == [], res
