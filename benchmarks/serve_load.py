"""Server throughput (requests/s) of POST /v1/embeddings and POST /search under a bounded loopback load.

Starts `geovec serve`'s app with uvicorn on 127.0.0.1 (a free port; nothing leaves the machine), builds a
small index of the RSVQA-LR GeoTIFFs (shared/data, 51 scenes 256x256 -> 51 chips) with the real default
model (or a synthetic scene with --synthetic), then sends a fixed number of requests from C concurrent
clients and counts failures (any non-200). Baseline in the same process: the same work called directly
(model.encode / GeoIndex.search) without HTTP, one at a time.

    python benchmarks/serve_load.py [--requests 200] [--concurrency 4]

``--soak``: a bounded soak of a real ``geovec serve`` process on 127.0.0.1 (the default model, a 4-chip index,
a --root folder): C clients x N requests of a fixed mix of valid and invalid requests (NaN / Infinity in
number fields, bad base64, a decompression bomb, a VRT disguised as a TIFF, bare file paths, oversized bodies
with and without Content-Length, malformed JSON, ...). Every answer must have its expected status and none
may be a 5xx; /healthz is polled throughout and must stay 200; the server's resident memory is sampled and
must level off (growth over the second half of the run). Figures go to the ``soak`` key of serve_load.json.

    python benchmarks/serve_load.py --soak [--clients 20] [--per-client 50]
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
SOAK_MAX_REQUEST_BYTES = 256 * 1024
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
    ap.add_argument("--soak", action="store_true", help="run the bounded loopback soak instead (see above)")
    ap.add_argument("--clients", type=int, default=20, help="soak: concurrent clients")
    ap.add_argument("--per-client", type=int, default=50, help="soak: requests per client")
    args = ap.parse_args()
    if args.soak:
        if args.max_seconds == 120:
            args.max_seconds = 45.0
        return main_soak(args)

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
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    res = {"benchmark": "serve_load", "data": data, "chips": len(index), "model": f"{model.model_id}@{model.revision}",
           "cpu": platform.processor() or platform.machine(), "cores_note": "2 CPU cores shared with other jobs", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "concurrency": args.concurrency, "host": "127.0.0.1 (loopback only)",
           "v1_embeddings_text": {**emb, "baseline_in_process_per_s": round(base_emb, 2)},
           "search": {**srch, "baseline_in_process_per_s": round(base_search, 2)}}
    if "soak" in previous:
        res["soak"] = previous["soak"]  # kept: measured by --soak
    print(json.dumps(res, indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    assert emb["failed"] == 0 and srch["failed"] == 0, "failed requests under load"


# --- soak ---------------------------------------------------------------------------------------------------
def _png_b64(size: int = 32, seed: int = 0) -> str:
    import base64
    import io

    from PIL import Image

    px = np.random.default_rng(seed).integers(0, 255, (size, size, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _bomb_b64() -> str:
    import base64
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def soak_root(folder: Path) -> Path:
    """The --root of the soak server: one good PNG and a VRT named .tif that points outside the root."""
    import base64

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.png").write_bytes(base64.b64decode(_png_b64(48, 3)))
    (folder / "evil.tif").write_text('<VRTDataset rasterXSize="8" rasterYSize="8"><VRTRasterBand dataType="Byte" '
                                     'band="1"><SimpleSource><SourceFilename>/etc/hostname</SourceFilename>'
                                     '</SimpleSource></VRTRasterBand></VRTDataset>')
    return folder


def soak_plan(n: int, seed: int = 0, has_index: bool = True, max_bytes: int = SOAK_MAX_REQUEST_BYTES) -> list[tuple]:
    """``n`` requests (kind, method, path, body bytes or None, expected statuses) in a fixed, seeded mix."""
    good, bomb = _png_b64(), _bomb_b64()
    big = json.dumps({"input": "a" * (max_bytes + 1000)}).encode()
    js = lambda v: json.dumps(v).encode()  # noqa: E731
    kinds = [  # (weight, kind, method, path, body, expected)
        (14, "text", "POST", "/v1/embeddings", lambda r: js({"input": [TEXTS[r.integers(len(TEXTS))]]}), {200}),
        (4, "texts", "POST", "/v1/embeddings", lambda r: js({"input": TEXTS[:3], "encoding_format": "base64"}), {200}),
        (4, "image", "POST", "/v1/embeddings",
         lambda r: js({"input": [{"image": "data:image/png;base64," + good, "box": [0, 0, 16, 16]}]}), {200}),
        (2, "root_image", "POST", "/v1/embeddings", lambda r: js({"input": [{"image": "good.png"}]}), {200}),
        (8, "bare_path", "POST", "/v1/embeddings", lambda r: js({"input": "/etc/passwd"}), {200}),  # text
        (8, "search", "POST", "/search", lambda r: js({"text": TEXTS[r.integers(len(TEXTS))], "k": 3}),
         {200} if has_index else {404}),
        (6, "healthz", "GET", "/healthz", None, {200}),
        (5, "nan_dimensions", "POST", "/v1/embeddings", lambda r: b'{"input": "x", "dimensions": NaN}', {422}),
        (5, "inf_near", "POST", "/search", lambda r: b'{"text": "x", "near": {"lat": 1e309, "lon": 0}}', {422}),
        (4, "nan_in_item", "POST", "/v1/embeddings", lambda r: b'{"input": [{"lat": NaN, "lon": 1}]}', {422}),
        (4, "bad_base64", "POST", "/v1/embeddings", lambda r: js({"input": [{"image": "data:image/png;base64,!!"}]}),
         {422}),
        (4, "bomb", "POST", "/v1/embeddings", lambda r: js({"input": [{"image": {"base64": bomb}}]}), {422}),
        (4, "vrt", "POST", "/v1/embeddings", lambda r: js({"input": [{"image": "evil.tif"}]}), {422}),
        (3, "outside_root", "POST", "/v1/embeddings", lambda r: js({"input": [{"image": "/etc/hostname"}]}), {422}),
        (3, "unknown_key", "POST", "/v1/embeddings", lambda r: js({"input": [{"colour": "red"}]}), {422}),
        (3, "surrogate", "POST", "/v1/embeddings", lambda r: b'{"input": ["\\ud800"]}', {422}),
        (3, "not_json", "POST", "/v1/embeddings", lambda r: b'{"input": [', {422}),
        (3, "too_many_items", "POST", "/v1/embeddings", lambda r: js({"input": ["x"] * 300}), {413}),
        (3, "k_too_big", "POST", "/search", lambda r: js({"text": "x", "k": 10_000}), {422} if has_index else {404}),
        (3, "oversized", "POST", "/v1/embeddings", lambda r: big, {413}),
        (3, "oversized_chunked", "POST", "/v1/embeddings", lambda r: ("chunked", big), {413}),
    ]
    weights = np.array([k[0] for k in kinds], float)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    plan = []
    for i in picks:
        _, kind, method, path, body, expected = kinds[i]
        plan.append((kind, method, path, body(rng) if body else None, expected))
    return plan


def _rss_mb(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return float("nan")


async def soak(base_url: str, pid: int, clients: int = 20, per_client: int = 50, seed: int = 0,
               has_index: bool = True, max_seconds: float = 45.0, max_bytes: int = SOAK_MAX_REQUEST_BYTES) -> dict:
    """Run the soak against ``base_url`` (loopback only); ``pid`` is the server process whose memory is sampled."""
    import httpx

    assert base_url.startswith(("http://127.0.0.1", "http://localhost")), "the soak only talks to loopback"
    plans = [soak_plan(per_client, seed * 1000 + c, has_index, max_bytes) for c in range(clients)]
    statuses: dict[str, dict[int, int]] = {}
    unexpected: list[dict] = []
    transport_errors: list[str] = []
    lat: list[float] = []
    done = 0
    rss: list[tuple[float, int, float]] = []  # (seconds, requests done, MiB)
    health = {"checks": 0, "not_200": 0}
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    stop = asyncio.Event()

    async def send(client, kind, method, path, body):
        if method == "GET":
            return await client.get(base_url + path)
        headers = {"content-type": "application/json"}
        if isinstance(body, tuple):  # chunked: no Content-Length, the body streamed in pieces
            data = body[1]

            async def pieces():
                for i in range(0, len(data), 16384):
                    yield data[i : i + 16384]

            return await client.post(base_url + path, content=pieces(), headers=headers)
        return await client.post(base_url + path, content=body, headers=headers)

    async def worker(plan):
        nonlocal done
        async with httpx.AsyncClient(timeout=60) as client:
            for kind, method, path, body, expected in plan:
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                try:
                    r = await send(client, kind, method, path, body)
                    code = r.status_code
                except httpx.HTTPError as e:
                    transport_errors.append(f"{kind}: {type(e).__name__}")
                    code = -1
                lat.append(time.perf_counter() - t)
                done += 1
                statuses.setdefault(kind, {}).setdefault(code, 0)
                statuses[kind][code] += 1
                if code not in expected and code != -1:
                    unexpected.append({"kind": kind, "status": code, "expected": sorted(expected),
                                       "body": r.text[:300]})

    async def healthz():
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                try:
                    ok = (await client.get(base_url + "/healthz")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                health["checks"] += 1
                health["not_200"] += 0 if ok else 1
                await asyncio.sleep(0.5)

    async def memory():
        while not stop.is_set():
            rss.append((time.perf_counter() - t0, done, _rss_mb(pid)))
            await asyncio.sleep(0.25)

    side = [asyncio.create_task(healthz()), asyncio.create_task(memory())]
    await asyncio.gather(*(worker(p) for p in plans))
    stop.set()
    await asyncio.gather(*side)
    wall = time.perf_counter() - t0
    rss.append((wall, done, _rss_mb(pid)))
    total = clients * per_client
    a = np.asarray(lat) * 1000 if lat else np.zeros(1)
    series = [m for _, _, m in rss if m == m]
    half = [m for _, d, m in rss if d >= done / 2 and m == m]
    quarter = [m for _, d, m in rss if d >= done / 4 and m == m]
    fivexx = sum(n for by in statuses.values() for code, n in by.items() if code >= 500)
    return {
        "clients": clients, "requests_per_client": per_client, "requests_planned": total, "requests_sent": done,
        "cut_short_by_deadline": done < total, "seconds": round(wall, 2), "requests_per_s": round(done / wall, 2),
        "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
        "status_5xx": fivexx, "unexpected_status": len(unexpected), "unexpected_examples": unexpected[:5],
        "transport_errors": len(transport_errors), "transport_error_examples": transport_errors[:5],
        "statuses_by_kind": {k: {str(c): n for c, n in sorted(v.items())} for k, v in sorted(statuses.items())},
        "healthz_checks": health["checks"], "healthz_not_200": health["not_200"],
        "rss_mb": {"start": round(series[0], 1) if series else None,
                   "after_first_quarter": round(quarter[0], 1) if quarter else None,
                   "at_half": round(half[0], 1) if half else None,
                   "end": round(series[-1], 1) if series else None, "max": round(max(series), 1) if series else None},
        "rss_growth_second_half_mb": round(series[-1] - half[0], 1) if half else None,
        "rss_samples": len(series),
    }


def soak_ok(res: dict, max_growth_mb: float = 64.0) -> list[str]:
    """The soak's promises; returns what was broken (empty: all kept)."""
    broken = []
    if res["status_5xx"]:
        broken.append(f"{res['status_5xx']} 5xx answers")
    if res["unexpected_status"]:
        broken.append(f"{res['unexpected_status']} answers with an unexpected status: {res['unexpected_examples']}")
    if res["transport_errors"]:
        broken.append(f"{res['transport_errors']} transport errors: {res['transport_error_examples']}")
    if res["healthz_not_200"]:
        broken.append(f"/healthz was not 200 in {res['healthz_not_200']} of {res['healthz_checks']} checks")
    growth = res["rss_growth_second_half_mb"]
    if growth is not None and growth > max_growth_mb:
        broken.append(f"server memory grew {growth} MiB over the second half (> {max_growth_mb})")
    return broken


def main_soak(args) -> None:
    import subprocess
    import sys

    import geovec
    from geovec.index import GeoIndex

    work = Path(tempfile.mkdtemp(prefix="geovec-soak-"))
    from PIL import Image

    scenes = work / "scenes"
    scenes.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (256, 256, 3)).astype(np.uint8)).save(scenes / "s.png")
    model = geovec.load_model()
    GeoIndex.build([scenes], work / "db", model, chip_size=128, progress=False)  # 4 chips
    root = soak_root(work / "root")
    model_name = f"{model.model_id}@{model.revision}"
    del model
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "geovec.cli", "serve", "--db", str(work / "db"), "--root", str(root), "--host",
           "127.0.0.1", "--port", str(port), "--max-request-mb", str(SOAK_MAX_REQUEST_BYTES / 2**20)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t = time.perf_counter()
        while True:  # wait for the model to load
            if server.poll() is not None:
                raise SystemExit(f"geovec serve exited: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t > 120:
                raise SystemExit("geovec serve did not come up in 120 s")
            time.sleep(0.25)
        startup = time.perf_counter() - t
        res = asyncio.run(soak(base, server.pid, args.clients, args.per_client, max_seconds=args.max_seconds))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    res = {"server": "geovec serve (subprocess) --db <4 chips> --root <good.png, evil.tif>", "host": "127.0.0.1",
           "model": model_name,
           "max_request_bytes": SOAK_MAX_REQUEST_BYTES, "server_startup_s": round(startup, 1),
           "cores_note": "2 CPU cores shared with other jobs", **res}
    broken = soak_ok(res)
    res["promises_kept"] = not broken
    res["broken"] = broken
    print(json.dumps(res, indent=2))
    data = json.loads(OUT.read_text()) if OUT.exists() else {"benchmark": "serve_load"}
    data["soak"] = res
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n")
    assert not broken, broken


if __name__ == "__main__":
    main()
