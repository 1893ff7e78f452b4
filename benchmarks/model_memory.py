"""What a loaded model holds in memory: RSS after import, load and one encode, torch (the baseline) against a
graph backend, each in a fresh process; and, for the graph backend, what releasing the torch copies of the
weights its graphs serve would save (an experiment: the model is then inference-only, and its torch fallbacks
(gradients, training, changed weights) could no longer run, so geovec does not offer it as a mode).

Released in the experiment: the vision tower, the GeoCLIP location tower, the text tower's transformer layers
(its token embeddings stay: torch looks tokens up before the encoder graph) and the global path's text top. After
releasing, the same batch is encoded again and must give the same embeddings (the graphs alone served it).

    python benchmarks/model_memory.py [--model geovec-compact] [--backend onnx] [--threads 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "results" / "model_memory.json"


def probe(model: str, backend: str, threads: int, release: bool) -> None:
    """In this (fresh) process: load, encode, measure; print one JSON line."""
    import ctypes
    import gc

    import numpy as np
    import torch

    def rss() -> float:
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

    out = {"backend_asked": backend}
    import geovec
    from geovec.runtime.backends import synthetic_scene

    torch.set_num_threads(threads)
    out["rss_after_import_mib"] = rss()
    m = geovec.load_model(model, backend=backend)
    out["backend"], out["rss_after_load_mib"] = m.backend, rss()
    sizes: dict[str, int] = {}
    for n, t in [*m.named_parameters(), *m.named_buffers()]:
        sizes[n.split(".", 1)[0]] = sizes.get(n.split(".", 1)[0], 0) + t.numel() * t.element_size()
    out["torch_tensors_mib"] = {k: round(v / 2**20, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}
    items = [{"image": synthetic_scene(i, 256, 256)} for i in range(16)] + \
        ["a harbour with many boats", "dense residential area"] + [{"lat": 52.37, "lon": 4.89}]
    first = m.encode(items, batch_size=16)
    out["rss_after_encode_mib"] = rss()
    if release:
        bb = m.backbone.model
        served = [m.vision, m.location, bb.encoder, m.global_text_top] + ([bb.pooler] if bb.pooler is not None else [])
        tensors = {id(t): t for mod in served for t in (*mod.parameters(), *mod.buffers())}
        out["released_tensors_mib"] = round(sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20, 1)
        for t in tensors.values():
            t.data = torch.empty(0, dtype=t.dtype)
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap pages back, as a long-running process would
        out["rss_after_release_mib"] = rss()
    again = m.encode(items, batch_size=16)  # steady state: a second encode (with the weights released, if asked)
    out["max_abs_diff_second_encode"] = float(np.abs(again - first).max())
    out["rss_after_second_encode_mib"] = rss()
    out["peak_rss_mib"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    print(json.dumps({k: round(v, 1) if isinstance(v, float) and k != "max_abs_diff_second_encode" else v
                      for k, v in out.items()}))


def run(model: str, backend: str, threads: int, release: bool, reps: int) -> dict:
    """``reps`` fresh processes; each RSS figure is their median, with the runs beside it."""
    cmd = [sys.executable, __file__, "--probe", "--model", model, "--backend", backend, "--threads", str(threads)]
    runs = [json.loads(subprocess.run(cmd + (["--release"] if release else []), capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1]) for _ in range(reps)]
    out = dict(runs[0])
    for k, v in runs[0].items():
        if k.endswith("_mib") and isinstance(v, float):
            out[k] = statistics.median(r[k] for r in runs)
            out[k.replace("_mib", "_runs_mib")] = [r[k] for r in runs]
    out["max_abs_diff_second_encode"] = max(r["max_abs_diff_second_encode"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="geovec-compact")
    ap.add_argument("--backend", default="onnx", help="the graph backend compared with torch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="fresh processes per configuration (medians reported)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--release", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        return probe(args.model, args.backend, args.threads, args.release)
    import geovec

    base = run(args.model, "torch", args.threads, False, args.reps)
    graphs = run(args.model, args.backend, args.threads, False, args.reps)
    released = run(args.model, args.backend, args.threads, True, args.reps)
    result = {"command": "python benchmarks/model_memory.py " + " ".join(sys.argv[1:]), "model": args.model,
              "geovec": geovec.__version__, "python": platform.python_version(), "threads": args.threads, "reps": args.reps,
              "batch": "16 synthetic 256x256 scenes, 2 texts, 1 place (batch_size 16)",
              "torch": base, args.backend: graphs, f"{args.backend}, torch copies released": released,
              "graphs_minus_torch_after_load_mib": round(graphs["rss_after_load_mib"] - base["rss_after_load_mib"], 1),
              "release_saves_after_second_encode_mib": round(graphs["rss_after_second_encode_mib"]
                                                             - released["rss_after_second_encode_mib"], 1),
              "release_saves_peak_mib": round(graphs["peak_rss_mib"] - released["peak_rss_mib"], 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
