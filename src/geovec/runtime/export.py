"""ONNX graphs of a model's exportable stages (:mod:`geovec.models.stages`), exported once from the checkpoint and
cached.

The single encoder's four graphs, each with dynamic batch (and image size / sequence length) axes:

* ``vision``: normalised pixels ``(B, 3, H, W)`` -> EfficientNet-Lite0 feature map ``(B, 1280, H/32, W/32)``;
* ``location``: ``lat``, ``lon`` ``(B,)`` in degrees -> GeoCLIP features ``(B, 512)``;
* ``encoder``: ``inputs_embeds (B, T, d)`` (token, modality and learned type embeddings already summed) and
  ``attention_mask (B, T)`` -> hidden states ``(B, T, d)``: the backbone transformer;
* ``head``: pooled states ``(B, d)`` -> embedding ``(B, D)``;

and the dual-path model's ``global_text`` (its global path's text tower with the fine-tuned text top).

What stays in torch: token-embedding lookup, the learned type embeddings, the image/location projectors, the
region tokens (RoIAlign + Fourier box features), sequence assembly and pooling. They are small, and the
trained parts among them change with every checkpoint, so the big frozen graphs are shared between
checkpoints.

Each graph is content-addressed: its file name carries a fingerprint of the module's weights (plus
:data:`EXPORT_FORMAT`), so a new checkpoint that only retrains the small parts re-exports only the head.
Files live in ``<cache_dir>/onnx/graphs/`` (:func:`geovec.paths.cache_dir`) or, after ``geovec export onnx
MODEL OUT``, in ``OUT`` with a ``manifest.json``; a checkpoint directory may carry such an export in its
``onnx/`` sub-folder. Exports are build products, never committed (``*.onnx`` is git-ignored).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from geovec.paths import cache_dir

EXPORT_FORMAT = 1  # bump when what a graph of a stage computes changes
OPSET = 17
MANIFEST = "manifest.json"

# the graph interface of each exportable stage: input names, output names, dynamic axes
_ENCODER = (["inputs_embeds", "attention_mask"], ["hidden"], {
    "inputs_embeds": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
    "hidden": {0: "batch", 1: "tokens"}})
SIGNATURES = {
    "vision": (["pixels"], ["fmap"], {"pixels": {0: "batch", 2: "height", 3: "width"},
                                      "fmap": {0: "batch", 2: "fh", 3: "fw"}}),
    "location": (["lat", "lon"], ["features"], {"lat": {0: "batch"}, "lon": {0: "batch"}, "features": {0: "batch"}}),
    "encoder": _ENCODER,
    "global_text": _ENCODER,
    "head": (["pooled"], ["embedding"], {"pooled": {0: "batch"}, "embedding": {0: "batch"}}),
}


def model_graphs(model) -> tuple[str, ...]:
    """The graphs ``model`` has: its stages that export (``vision``, ``location``, ``encoder``, ``head``, and the
    dual-path model's ``global_text``)."""
    return tuple(g for g, stage in model.torch_stages().items() if stage.graph is not None)


def graph_modules(model) -> dict[str, list[nn.Module]]:
    """The model's modules whose weights each stage's graph bakes in (a graph is stale once any of them changes);
    also the derived graphs' (``encoder_text``: :mod:`geovec.runtime.quantize`)."""
    return {g: list(stage.modules) for g, stage in model.torch_stages().items()}


class _StageGraph(nn.Module):
    """What an export traces: a stage's ``graph`` module, with the weights it computes with as its own."""

    def __init__(self, stage):
        super().__init__()
        self.step = stage.graph
        self.weights = nn.ModuleList(stage.modules)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.step(*inputs)


# --- fingerprints --------------------------------------------------------------------------------------------
def fingerprint(model, graph: str) -> str:
    """SHA-256 (hex, 20 chars) of what the graph computes: format, wrapper, module classes, every tensor."""
    h = hashlib.sha256(f"geovec-onnx/{EXPORT_FORMAT}/{graph}/opset{OPSET}".encode())
    for module in graph_modules(model)[graph]:
        h.update(type(module).__qualname__.encode())
        for name, t in sorted(module.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            h.update(memoryview(t.numpy()).cast("B"))
    return h.hexdigest()[:20]


def model_fingerprint(model) -> str:
    """SHA-256 (hex, 12 chars) of what the torch side around the graphs computes: class, config and every
    trained tensor (the faithfulness of a graph set is checked per model, as torch parts can amplify it)."""
    import dataclasses

    h = hashlib.sha256(type(model).__qualname__.encode())
    h.update(json.dumps(dataclasses.asdict(model.config), sort_keys=True, default=str).encode())
    for name, t in sorted(model.trainable_state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(memoryview((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()).cast("B"))
    return h.hexdigest()[:12]


def graph_tensors(modules: list[nn.Module]) -> list[torch.Tensor]:
    return [t for m in modules for t in (*m.parameters(), *m.buffers())]


def param_version(tensors: list[torch.Tensor]) -> int:
    """Sum of torch's in-place version counters of a graph's parameters and buffers (:func:`graph_tensors`):
    it changes whenever an optimizer step, ``load_state_dict`` or ``copy_`` touches a weight."""
    return sum(t._version for t in tensors)


# --- export --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _onnx_symbolics():
    """GeoCLIP uses ``deg2rad``, which the TorchScript exporter has no symbolic for: it is ``x * pi/180``."""
    def deg2rad(g, x):
        return g.op("Mul", x, g.op("Constant", value_t=torch.tensor(math.pi / 180.0, dtype=torch.float32)))

    torch.onnx.register_custom_op_symbolic("aten::deg2rad", deg2rad, OPSET)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            torch.onnx.unregister_custom_op_symbolic("aten::deg2rad", OPSET)


def export_graph(model, graph: str, path: str | Path) -> Path:
    """Trace one graph of ``model`` to ``path`` (written to a temporary file and renamed into place)."""
    stage = model.torch_stages()[graph]
    if graph not in SIGNATURES or stage.graph is None:
        raise ValueError(f"{graph!r} is no exportable stage; graphs: {model_graphs(model)}")
    return export_module(_StageGraph(stage).eval(), stage.example(), SIGNATURES[graph], path)


def export_module(module: nn.Module, args: tuple, signature: tuple, path: str | Path) -> Path:
    """Trace ``module`` on ``args`` to an ONNX file at ``path``; ``signature``: (input names, output names,
    dynamic axes). Written to a temporary file and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs, outputs, axes = signature
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), _onnx_symbolics(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def graphs_cache() -> Path:
    return cache_dir() / "onnx" / "graphs"


def _manifest_graphs(directory: Path) -> dict[str, dict]:
    try:
        return json.loads((directory / MANIFEST).read_text()).get("graphs", {})
    except (OSError, ValueError):
        return {}


def find_graphs(model, search: list[Path] | None = None, prints: dict | None = None) -> dict[str, Path]:
    """Graph files matching ``model``'s current weights, from the export folders in ``search`` (each with a
    manifest) or the cache; graphs not found are absent from the result."""
    prints = prints if prints is not None else {g: fingerprint(model, g) for g in model_graphs(model)}
    found: dict[str, Path] = {}
    for directory in search or []:
        for g, entry in _manifest_graphs(Path(directory)).items():
            p = Path(directory) / entry.get("file", "")
            if g in prints and g not in found and entry.get("fingerprint") == prints[g] and p.is_file():
                found[g] = p
    for g, fp in prints.items():
        p = graphs_cache() / f"{g}-{fp}.onnx"
        if g not in found and p.is_file():
            found[g] = p
    return found


def ensure_graphs(model, search: list[Path] | None = None, log=None) -> tuple[dict[str, Path], dict[str, str]]:
    """Every graph of ``model``: found (see :func:`find_graphs`) or exported now into the cache.
    Returns ``(paths, fingerprints)``; a graph that fails to export is left out (it runs in torch)."""
    prints = {g: fingerprint(model, g) for g in model_graphs(model)}
    found = find_graphs(model, search, prints)
    missing = [g for g in model_graphs(model) if g not in found]
    if missing and log:
        log(f"geovec: exporting {', '.join(missing)} to ONNX once (cached in {graphs_cache()})")
    for g in missing:
        try:
            found[g] = export_graph(model, g, graphs_cache() / f"{g}-{prints[g]}.onnx")
        except Exception as e:  # an exporter gap for one backbone must not take the others down
            if log:
                log(f"geovec: the {g} graph did not export ({type(e).__name__}: {str(e)[:200]}); it runs in torch")
    return found, prints


def export_onnx(model, out: str | Path) -> Path:
    """``geovec export onnx``: all graphs of ``model`` into ``out`` plus ``manifest.json``. Returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graphs: dict[str, dict] = {}
    for g in model_graphs(model):
        fp = fingerprint(model, g)
        name = f"{g}.onnx"
        export_graph(model, g, out / name)
        graphs[g] = {"file": name, "fingerprint": fp}
    manifest = {"format": EXPORT_FORMAT, "opset": OPSET, "model": model.model_id, "revision": model.revision,
                "torch": torch.__version__, "graphs": graphs, "faithfulness": {}}
    write_json(out / MANIFEST, manifest)
    return out


def write_json(path: Path, data: dict) -> None:
    """Atomic write (temporary file + rename), so concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
