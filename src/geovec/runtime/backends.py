"""Inference backends of the single encoder, selected the way sentence-transformers does it::

    geovec.load_model("geovec-compact", backend="auto")      # default: fastest installed faithful backend
    geovec.load_model("geovec-compact", backend="onnx")      # ONNX Runtime
    geovec.load_model("geovec-compact", backend="openvino")  # OpenVINO, fp32 unless precision="bf16"
    geovec.load_model("geovec-compact", backend="onnx", precision="int8")  # int8 graphs (runtime/quantize.py)
    geovec.load_model("geovec-compact", backend="torch")     # the reference

``$GEOVEC_BACKEND`` (or ``geovec --backend NAME <command>``) sets the default for every command that loads
a model (embed, index build, serve, bench, ...).

The torch model stays the reference: attaching a backend (:func:`attach`, once, at load) puts the exported
graphs (:mod:`geovec.runtime.export`) in the model's stage slots (:mod:`geovec.models.stages`) in place of the
torch steps; a graph runs only under ``torch.no_grad``/``inference_mode`` (training always runs torch), and a
graph whose torch weights changed since it was attached (an optimizer step, a loaded state dict) falls back
to torch. Before a backend is used, its embeddings of a fixed mixed batch
(:func:`faithfulness_items`: text, image at several sizes, image+box, location, all four) are compared with
torch's; the result is cached per graph set. ``auto`` takes the first backend of :data:`AUTO_ORDER` that is
installed and reaches :data:`FAITHFUL_COSINE`, else torch (with a one-line hint when no runtime is
installed).

Precision: fp32 by default on every backend. OpenVINO picks bf16 by itself on CPUs that have it unless
``INFERENCE_PRECISION_HINT`` says otherwise, so geovec always sets it: ``f32`` unless ``precision="bf16"``
is asked for. A bf16 backend is held to :data:`REDUCED_COSINE` instead (the location graph always runs in
fp32: its random Fourier features take sines of angles in the thousands of radians). ``precision="int8"``
(onnxruntime) runs the int8 graphs of :mod:`geovec.runtime.quantize` and is held to :data:`INT8_COSINE`.
Reduced precision is never picked by itself: it is asked for by name (``precision=`` or ``$GEOVEC_PRECISION``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

from geovec.runtime import export as ex
from geovec.runtime.quantize import TEXT_ONLY_GRAPHS, int8_graphs
from geovec.runtime.backend_names import BACKENDS, PRECISIONS, requested, requested_backend  # noqa: F401
from geovec.runtime.runners import (  # noqa: F401  (imported from here)
    PRECISION_BACKEND, RUNNERS, OnnxRuntimeRunner, OpenVINORunner, Runner, cache_writable)

AUTO_ORDER = ("onnx", "openvino")  # measured on the 2-core dev machine: see docs/performance.md
FAITHFUL_COSINE = 0.9999  # fp32 backends: every item of the fixed batch, cosine with torch
REDUCED_COSINE = 0.998  # bf16, stated separately: measured 0.9992; rsmeb-dev within the paired CI (docs/performance.md)
CHECK_VERSION = "c2"  # the fixed batch's definition (c2: its texts also as a text-only batch); cached checks of others are redone
INT8_COSINE = 0.98  # int8, stated separately: measured 0.9926 on the fixed batch; rsmeb-dev in docs/performance.md
EXTRA_HINT = {"onnx": "pip install 'geovec[onnx]'", "openvino": "pip install 'geovec[openvino]'"}
_MODULE = {"onnx": "onnxruntime", "openvino": "openvino"}
_hinted = False


def installed(backend: str) -> bool:
    if backend == "torch":
        return True
    return importlib.util.find_spec(_MODULE[backend]) is not None


def log(msg: str) -> None:
    """One line to stderr (what a load reports: exports, fallbacks, hints)."""
    print(msg, file=sys.stderr, flush=True)


# --- attaching: graph-backed stages in the model's slots ----------------------------------------------------
class GraphStage:
    """A model stage run as the runner's graph ``name``; torch (``fallback``) runs it instead with gradients, in
    training mode, and for good once the weights the graph was exported from have changed (an optimizer step, a
    loaded state dict) or left the CPU."""

    def __init__(self, name: str, runner: Runner, fallback, modules):
        self.name, self.runner, self.fallback, self.modules = name, runner, fallback, list(modules)
        self.tensors = ex.graph_tensors(self.modules)
        self.version = ex.param_version(self.tensors)  # the in-place version counters now
        self.stale = False

    def _usable(self) -> bool:
        if self.stale or torch.is_grad_enabled() or any(m.training for m in self.modules):
            return False
        if ex.param_version(self.tensors) != self.version or self.tensors[0].device.type != "cpu":
            self.stale = True
            log(f"geovec: the {self.name} weights changed since the {self.runner.label} backend was attached; "
                 f"{self.name} runs in torch from now on")
            return False
        return True

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        if not self._usable():
            return self.fallback(*tensors)
        # the graphs take float32 and int64 inputs
        arrays = [(t.float() if t.is_floating_point() else t.long()).detach().contiguous().numpy() for t in tensors]
        return torch.from_numpy(self.runner.run(self.name, *arrays))


def attach(model, runner: Runner | None) -> None:
    """Put ``runner``'s graphs in ``model``'s stage slots (:mod:`geovec.models.stages`), each falling back on the
    torch stage; None: every stage in torch again. A derived graph (``encoder_text``) falls back on the stage it
    derives from (``encoder``), graph-backed or not."""
    if runner is None:
        model.use_stages()
        return
    torch_stages = model.torch_stages()
    stages: dict = {}
    for name in [g for g in torch_stages if g in runner.graphs and g not in TEXT_ONLY_GRAPHS.values()]:
        stages[name] = GraphStage(name, runner, torch_stages[name], torch_stages[name].modules)
    for source, derived in TEXT_ONLY_GRAPHS.items():
        if derived in runner.graphs and derived in torch_stages:
            stages[derived] = GraphStage(derived, runner, stages.get(source, torch_stages[source]),
                                         torch_stages[derived].modules)
        elif source in stages and derived in torch_stages:
            stages[derived] = stages[source]  # text-only batches take the encoder's graph
    model.use_stages(stages, runner)


# --- faithfulness --------------------------------------------------------------------------------------------
def synthetic_scene(seed: int, width: int, height: int) -> np.ndarray:
    """A structured (not pure-noise) uint8 RGB scene, stripes and blobs, deterministic per seed (the fixed
    faithfulness batch; the test suite's fixture images)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    img = np.zeros((height, width, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(1, 8), rng.uniform(1, 8), rng.uniform(0, 6.28)
        img[..., c] = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 1, 3)
    return (img * 255).astype(np.uint8)


FAITHFULNESS_SIZES = ((224, 224), (320, 192), (160, 160), (448, 448), (500, 300))  # (width, height)


def faithfulness_items() -> list:
    """The fixed mixed batch: text, image (five sizes, including up- and down-scaled and non-square),
    image+box, location, image+text+box+location, and an instruction."""
    imgs = [synthetic_scene(i, w, h) for i, (w, h) in enumerate(FAITHFULNESS_SIZES)]
    return [
        "storage tanks next to a harbour",
        "a long runway beside the terminal with many parked aircraft and service roads",
        *imgs,
        {"image": imgs[0], "box": [20, 30, 120, 140]},
        {"image": imgs[4], "boxes": [[0, 0, 250, 150], [300, 100, 480, 290]], "text": "two regions"},
        {"lat": 52.37, "lon": 4.90},
        {"lat": -33.87, "lon": 151.21},
        {"image": imgs[1], "text": "farmland", "box": [10, 10, 200, 180], "lat": 51.4, "lon": 4.5},
        {"image": imgs[3], "text": "harbour", "box": [100, 100, 300, 400], "lat": -33.86, "lon": 151.2,
         "instruction": "Represent this place."},
    ]


def faithfulness(model, runner: Runner, items: list | None = None) -> dict:
    """Cosine of ``runner``'s embeddings with torch's on :func:`faithfulness_items` (or ``items``)."""
    items = items if items is not None else faithfulness_items()
    # the texts once more on their own: a text-only batch (a backend may run other graphs for those)
    texts = [it for it in items if isinstance(it, str)]
    previous = model.runner
    try:
        attach(model, None)
        ref = model.encode(items, batch_size=8, show_progress_bar=False)
        ref = np.concatenate([ref, model.encode(texts, batch_size=8, show_progress_bar=False)]) if texts else ref
        attach(model, runner)
        got = model.encode(items, batch_size=8, show_progress_bar=False)
        got = np.concatenate([got, model.encode(texts, batch_size=8, show_progress_bar=False)]) if texts else got
    finally:
        attach(model, previous)
    cos = np.sum(ref * got, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "n_items": len(ref),
            "max_abs_diff": float(np.abs(ref - got).max()), "backend": runner.label,
            "runtime_version": getattr(runner, "version", "?"), "graphs": sorted(runner.graphs)}


def threshold(precision: str) -> float:
    return {"fp32": FAITHFUL_COSINE, "bf16": REDUCED_COSINE, "int8": INT8_COSINE}[precision]


def _check_path(prints: dict[str, str], runner: Runner, model_key: str) -> Path:
    key = model_key + "-" + "-".join(f"{g}{prints[g][:8]}" for g in sorted(runner.graphs))
    version = re.sub(r"[^A-Za-z0-9.]+", "_", str(getattr(runner, "version", "")))[:40]
    return ex.cache_dir() / "onnx" / "checks" / f"{runner.label}-{version}-{key}-{CHECK_VERSION}.json"


def checked_faithfulness(model, runner: Runner, prints: dict[str, str]) -> dict:
    """:func:`faithfulness`, computed once per (model weights, graph set, backend, precision, runtime version)
    and cached."""
    path = _check_path(prints, runner, ex.model_fingerprint(model))
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    report = faithfulness(model, runner)
    if cache_writable():
        try:
            ex.write_json(path, report)
        except OSError:
            pass
    return report


def precision_graphs(model, paths: dict[str, Path], prints: dict[str, str], precision: str, log=None
                     ) -> tuple[dict[str, Path], dict[str, str]]:
    """The graph set (paths, fingerprints) a precision runs: the fp32 exports, or the int8 graphs built from them
    (:func:`geovec.runtime.quantize.int8_graphs`); bf16 runs the fp32 graphs with OpenVINO's precision hint."""
    if precision != "int8":
        return paths, prints
    return int8_graphs(model, paths, prints, log=log)


# --- selection -----------------------------------------------------------------------------------------------
def _search_dirs(model, export_dir) -> list[Path]:
    dirs = [Path(export_dir)] if export_dir else []
    source = getattr(model, "source_dir", None)
    if source is not None:
        dirs.append(Path(source) / "onnx")
    return dirs


def apply_backend(model, backend: str | None = None, precision: str | None = None,
                  export_dir: str | Path | None = None) -> str:
    """Attach the requested backend to ``model`` (see the module docstring); returns the backend in use."""
    global _hinted
    name = requested_backend(backend)
    precision = requested(None, precision)[1]
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision != "fp32" and name not in ("auto", PRECISION_BACKEND[precision]):
        raise ValueError(f"precision={precision!r} needs backend={PRECISION_BACKEND[precision]!r} (or 'auto'), "
                         f"not {name!r}")
    if name == "torch":
        return "torch"
    supported = callable(getattr(model, "use_stages", None))
    on_cpu = supported and model.device.type == "cpu"
    if not supported or not on_cpu:
        if name == "auto":
            return "torch"
        why = (f"the {model.config.architecture!r} architecture runs on torch only" if not supported
               else f"the model is on {model.device}, and backend {name!r} runs on CPU")
        raise ValueError(f"backend {name!r}: {why} (backends apply to the single encoder)")
    candidates = [name] if name != "auto" else [b for b in AUTO_ORDER if installed(b)]
    if precision != "fp32" and name == "auto":
        candidates = [b for b in candidates if b == PRECISION_BACKEND[precision]]
    if not candidates:
        if not _hinted:
            _hinted = True
            log(f"geovec: torch backend (onnxruntime is not installed: {EXTRA_HINT['onnx']} embeds images ~3x faster)")
        return "torch"
    last_error = ""
    for b in candidates:
        if not installed(b):
            raise ImportError(f"backend {b!r} needs {_MODULE[b]}: {EXTRA_HINT[b]}")
        try:
            paths, prints = ex.ensure_graphs(model, _search_dirs(model, export_dir), log=log)
            if not paths:
                raise RuntimeError("no graph could be exported")
            paths, prints = precision_graphs(model, paths, prints, precision, log=log)
            runner = RUNNERS[b](paths, precision=precision)
            report = checked_faithfulness(model, runner, prints)
        except (ImportError, ValueError):
            raise
        except Exception as e:
            if name != "auto":
                raise
            last_error = f"{b}: {type(e).__name__}: {str(e)[:200]}"
            continue
        if report["min_cosine"] >= threshold(precision):
            attach(model, runner)
            return runner.label
        last_error = (f"{runner.label} reached cosine {report['min_cosine']:.6f} with torch on the fixed batch, "
                      f"below {threshold(precision)}")
        if name != "auto":
            raise RuntimeError(f"backend {runner.label!r} is not faithful: {last_error}; use backend='torch'")
    log(f"geovec: torch backend ({last_error})")
    return "torch"


def attach_stamped(model, stamp: dict) -> bool:
    """Attach the backend a checked load recorded (:mod:`geovec.runtime.load_stamp`) without checking it again;
    False (nothing attached) where its graphs no longer load."""
    recorded = stamp.get("runner")
    if recorded is None:
        return True  # that load ran on torch
    if not callable(getattr(model, "use_stages", None)) or not installed(recorded["name"]):
        return False
    try:
        runner = RUNNERS[recorded["name"]]({g: Path(p) for g, p in stamp["graphs"].items()},
                                           precision=recorded["precision"])
    except Exception:  # a graph file that no longer loads: check again
        return False
    attach(model, runner)
    return True
