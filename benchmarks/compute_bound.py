"""The arithmetic bound on ``encode`` throughput: what one item costs in matmul / conv FLOPs, against the fastest
fp32 matrix multiply the CPU sustains, measured in the same process.

    python benchmarks/compute_bound.py [--model NAME] [--n 64] [--batch-size 32] [--threads 2] [--repeats 5]

Per input kind (the items of ``benchmarks/throughput.py``: 224-px JPEG files, batch 32; and the same scenes as
256-px files, the chips ``geovec index build`` embeds) it counts the FLOPs of
one ``encode`` with the torch backend (``torch.utils.flop_counter``: matmuls, convolutions and attention, from
the real shapes, padding included; elementwise work is not counted, so the count is a lower bound on the
arithmetic). It then measures the best fp32 GEMM rate on ``--threads`` threads, in onnxruntime (the default
backend's runtime) and in torch, over square sizes and over the shapes the encoder's own linear layers have, and
the default backend's graphs alone on the same items (``graph_ceiling`` of ``throughput.py``). From these:

- ``bound_items_per_s`` = best GEMM rate / FLOPs per item: no fp32 engine on this CPU can embed more items per
  second than this, whatever it fuses, since every counted FLOP is a multiply-add that a GEMM does at its best;
- ``needed_gflop_per_s`` = goal x FLOPs per item, and its ratio to the best GEMM rate;
- ``graphs_alone_gflop_per_s``: what the default backend's graphs reach on these items, as a share of that rate.

It also measures the bf16 GEMM rate in torch (the CPU's bf16 dot-product instructions), which is why the
explicitly chosen bf16 backend can pass a bound the fp32 default cannot. Writes
``benchmarks/results/compute_bound.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import geovec

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def _throughput_module():
    spec = importlib.util.spec_from_file_location("geovec_throughput_bench", HERE / "throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def encode_flops(model, items: list, batch_size: int) -> dict:
    """FLOPs of one ``model.encode(items)`` (torch backend): the total per item and its split by the modules
    ``encode`` calls directly (by class: the vision tower, the text encoder, the global path's parts, ...)."""
    from torch.utils.flop_counter import FlopCounterMode

    if getattr(model, "runner", None) is not None:
        raise ValueError("encode_flops counts torch operators: load the model with backend='torch'")
    with FlopCounterMode(display=False) as counter:
        model.encode(items, batch_size=batch_size, show_progress_bar=False)
    total = counter.get_total_flops()
    by_module: dict[str, int] = {}
    for name, ops in counter.get_flop_counts().items():
        if "." not in name and name != "Global":  # the modules encode calls directly: towers, encoder, heads
            by_module[name] = by_module.get(name, 0) + int(sum(ops.values()))
    rest = total - sum(by_module.values())
    if rest > 0:  # layers run one by one outside their parent's forward (the global path's sentence pass)
        by_module["(layers called directly)"] = rest
    n = len(items)
    return {"gflop_per_item": total / n / 1e9,
            "gflop_per_item_by_module": {k: round(v / n / 1e9, 4) for k, v in sorted(by_module.items())}}


def chips_256(paths: list[Path], tmp: Path) -> list[Path]:
    """The same scenes as 256-px JPEG files: the chips `geovec index build` embeds (256-px tiles by default)."""
    from PIL import Image

    out = []
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            q = tmp / f"chip_{i:04d}.jpg"
            im.convert("RGB").resize((256, 256), Image.BICUBIC).save(q, quality=90)
        out.append(q)
    return out


def cpu_id(cpuinfo: str) -> dict[str, str]:
    """Vendor, family, model and name of the first CPU in a /proc/cpuinfo text (the family and model say which
    microarchitecture, hence how many fp32 FLOPs a core can do per cycle)."""
    out = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("vendor_id", "cpu family", "model", "model name"):
            out[key.strip()] = value.strip()
    return out


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def gemm_rates(shapes: list[tuple[int, int, int]], threads: int, repeats: int = 5) -> dict[str, dict]:
    """Best GFLOP/s of an (M, K) x (K, N) fp32 matmul per shape, in onnxruntime and torch on ``threads``
    threads, plus torch bf16."""
    out: dict[str, dict] = {"torch-fp32": {}, "torch-bf16": {}}
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    for m, k, n in shapes:
        a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
        flop = 2.0 * m * k * n
        out["torch-fp32"][f"{m}x{k}x{n}"] = round(flop / _best_seconds(lambda: a @ b, repeats) / 1e9, 1)
        a16, b16 = a.bfloat16(), b.bfloat16()
        out["torch-bf16"][f"{m}x{k}x{n}"] = round(flop / _best_seconds(lambda: a16 @ b16, repeats) / 1e9, 1)
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:  # the onnx extra is absent: torch's rates only
        return out
    out["onnxruntime-fp32"] = {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    for m, k, n in shapes:
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feeds = {"a": np.random.default_rng(0).standard_normal((m, k), dtype=np.float32),
                 "b": np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)}
        sec = _best_seconds(lambda: sess.run(None, feeds), repeats)
        out["onnxruntime-fp32"][f"{m}x{k}x{n}"] = round(2.0 * m * k * n / sec / 1e9, 1)
    return out


def bounds(flops: dict[str, dict], peak_gflops: float, goals: dict[str, float],
           graphs_alone: dict[str, float | None]) -> dict[str, dict]:
    """Per kind: the FLOP-bound rate at ``peak_gflops``, what the goal needs, and what the graphs reach."""
    out = {}
    for kind, f in flops.items():
        per = f["gflop_per_item"]
        row = {"gflop_per_item": round(per, 4), "bound_items_per_s": round(peak_gflops / per, 1)}
        if kind in goals:
            need = goals[kind] * per
            row.update(goal_items_per_s=goals[kind], needed_gflop_per_s=round(need, 1),
                       needed_share_of_best_gemm=round(need / peak_gflops, 2))
        rate = graphs_alone.get(kind)
        if rate:
            row.update(graphs_alone_items_per_s=rate, graphs_alone_gflop_per_s=round(rate * per, 1),
                       graphs_alone_share_of_best_gemm=round(rate * per / peak_gflops, 2))
        out[kind] = row
    return out


def main() -> None:
    tp = _throughput_module()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tp.add_run_args(ap, repeats=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "compute_bound.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    torch_model = geovec.load_model(args.model, num_threads=args.threads, backend="torch")
    default = geovec.load_model(args.model, num_threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="geovec-compute-bound-") as tmp:
        paths, source = tp.jpeg_inputs(args.n, Path(tmp))
        _, kinds = tp.benchmark_items(paths)
        kinds["chip-256px"] = chips_256(paths, Path(tmp))  # what `geovec index build` embeds per 256-px chip
        flops = {kind: encode_flops(torch_model, items, args.batch_size) for kind, items in kinds.items()}
        for items in kinds.values():  # warm-up of the default backend's sessions
            default.encode(items[:8], batch_size=args.batch_size, show_progress_bar=False)
        alone = {kind: tp.graph_ceiling(default, items, args.batch_size, args.repeats) for kind, items in kinds.items()}
    enc = torch_model.backbone.hidden_size
    tokens = args.batch_size * 48  # the encoder's linear layers on a batch of 32 sequences of 48 tokens
    shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (tokens, enc, enc), (tokens, enc, 4 * enc), (tokens, 4 * enc, enc)]
    rates = gemm_rates(shapes, args.threads, args.repeats)
    fp32 = {eng: r for eng, r in rates.items() if eng.endswith("fp32")}
    best_engine, best_shape, peak = max(((e, s, v) for e, r in fp32.items() for s, v in r.items()), key=lambda x: x[2])
    bf16_peak = max(rates["torch-bf16"].values())
    goals = {**tp.GOALS, "chip-256px": 100.0}  # index build >= 100 chips/s
    table = bounds(flops, peak, goals, {k: (v or {}).get("items_per_s") for k, v in alone.items()})
    for kind in table:
        by_module = flops[kind]["gflop_per_item_by_module"]
        table[kind]["gflop_per_item_by_module"] = by_module
        ms = (alone.get(kind) or {}).get("ms_per_item", {})
        table[kind]["graphs_alone_ms_per_item"] = ms
        if ms.get("vision") and by_module.get("EfficientNetLite"):  # the vision graph's own arithmetic rate
            table[kind]["vision_graph_gflop_per_s"] = round(by_module["EfficientNetLite"] / ms["vision"] * 1e3, 1)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    result = {
        "command": tp.command_line("compute_bound.py", args),
        "model": f"{default.model_id}@{default.revision}", "default_backend": default.backend, "inputs": source,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "threads": args.threads,
        "cpu_id": cpu_id(cpuinfo),
        "cpu_flags": sorted({f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in cpuinfo}),
        "load_avg_at_start": [round(x, 2) for x in load_start],
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "gemm_gflop_per_s": rates, "best_fp32_gemm": {"engine": best_engine, "shape": best_shape, "gflop_per_s": peak},
        "best_bf16_gemm_gflop_per_s": bf16_peak,
        "flops_note": "matmul, convolution and attention FLOPs of one encode (torch.utils.flop_counter, real shapes "
                      "with padding); elementwise work is not counted, so the bound is optimistic",
        "kinds": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("best GEMM GFLOP/s on", args.threads, "threads:",
          {e: max(r.values()) for e, r in rates.items()}, f"(fp32 best: {best_engine} {best_shape})")
    print(f"\n{'kind':<24}{'GFLOP/item':>11}{'bound /s':>10}{'goal /s':>9}{'needs GFLOP/s':>15}"
          f"{'x best':>8}{'graphs /s':>11}{'graphs GFLOP/s':>16}")
    for kind, r in table.items():
        print(f"{kind:<24}{r['gflop_per_item']:>11.3f}{r['bound_items_per_s']:>10.1f}"
              f"{r.get('goal_items_per_s', '-'):>9}{r.get('needed_gflop_per_s', '-'):>15}"
              f"{r.get('needed_share_of_best_gemm', '-'):>8}{r.get('graphs_alone_items_per_s', '-'):>11}"
              f"{r.get('graphs_alone_gflop_per_s', '-'):>16}")
    for kind, r in table.items():
        if "vision_graph_gflop_per_s" in r:
            print(f"{kind}: the vision graph alone computes {r['vision_graph_gflop_per_s']} GFLOP/s "
                  f"({r['vision_graph_gflop_per_s'] / peak:.0%} of the best fp32 GEMM)")
    print(f"load average {result['load_avg_at_start']} -> {result['load_avg_at_end']} -> {args.out}")


if __name__ == "__main__":
    main()
