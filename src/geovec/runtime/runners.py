"""What runs exported graphs: one runner per runtime (ONNX Runtime, OpenVINO), on numpy arrays. Nothing here
imports torch: the torch model's graph-backed stages (:mod:`geovec.runtime.backends`) and the exported-graph
runtime (:mod:`geovec.models.graph_model`) both run their graphs through these."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

from geovec.paths import cache_dir

PRECISION_BACKEND = {"bf16": "openvino", "int8": "onnx"}  # the backend that runs each reduced precision


def default_threads() -> int:
    """torch's intra-op thread count where torch is loaded (the graphs then run beside it), else the CPUs this
    process may use."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- runners -------------------------------------------------------------------------------------------------
class Runner:
    """Runs exported graphs on numpy arrays; ``graphs`` names those it has (the rest stay in torch)."""

    name = "?"
    precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, paths: dict[str, Path], precision: str = "fp32", threads: int | None = None):
        if precision not in self.precisions:
            other = f"; for {precision} use backend={PRECISION_BACKEND[precision]!r}" if precision in PRECISION_BACKEND \
                else ""
            raise ValueError(f"the {self.name} backend runs {' or '.join(self.precisions)}, not {precision}{other}")
        self.paths = dict(paths)
        self.precision = precision
        self.threads = threads or default_threads()
        self.graphs = set(self.paths)

    @property
    def label(self) -> str:
        return self.name if self.precision == "fp32" else f"{self.name}-{self.precision}"

    def run(self, graph: str, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxRuntimeRunner(Runner):
    name = "onnx"
    precisions = ("fp32", "int8")

    def __init__(self, paths, precision="fp32", threads=None, lazy: bool = False):
        """``lazy``: each graph's session is made when the graph first runs (a query that needs one graph loads
        one), instead of all of them now."""
        super().__init__(paths, precision, threads)
        import onnxruntime as ort

        self.version = ort.__version__
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle intra-op threads sleep instead of spinning: the decode threads need those cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._options, self._lock = so, threading.Lock()
        self.sessions, self.inputs = {}, {}
        if not lazy:
            for g in self.paths:
                self.session(g)

    def session(self, graph: str):
        s = self.sessions.get(graph)
        if s is None:
            import onnxruntime as ort

            with self._lock:
                s = self.sessions.get(graph)
                if s is None:
                    s = ort.InferenceSession(str(self.paths[graph]), self._options, providers=["CPUExecutionProvider"])
                    self.inputs[graph] = [i.name for i in s.get_inputs()]
                    self.sessions[graph] = s
        return s

    def run(self, graph, *arrays):
        return self.session(graph).run(None, dict(zip(self.inputs[graph], arrays)))[0]


class OpenVINORunner(Runner):
    name = "openvino"
    precisions = ("fp32", "bf16")

    def __init__(self, paths, precision="fp32", threads=None):
        super().__init__(paths, precision, threads)
        import openvino as ov

        self.version = ov.__version__
        core = ov.Core()
        with_cache = cache_writable()
        if with_cache:
            core.set_property({"CACHE_DIR": str(cache_dir() / "openvino")})
        self.compiled, self.requests, self.locks = {}, {}, {}
        for g, p in self.paths.items():
            hint = "bf16" if precision == "bf16" and g in ("vision", "encoder", "global_text") else "f32"
            cfg = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": self.threads,
                   "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
            self.compiled[g] = core.compile_model(core.read_model(str(p)), "CPU", cfg)
            self.requests[g] = self.compiled[g].create_infer_request()
            self.locks[g] = threading.Lock()  # an infer request is not thread-safe (serve runs encode in threads)

    def run(self, graph, *arrays):
        with self.locks[graph]:
            req = self.requests[graph]
            req.infer(list(arrays))
            return np.array(req.get_output_tensor(0).data, copy=True)


RUNNERS = {"onnx": OnnxRuntimeRunner, "openvino": OpenVINORunner}


def cache_writable() -> bool:
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        return os.access(d, os.W_OK)
    except OSError:
        return False


