"""``geovec.load_model(name_or_path)``: named models shipped in the package, a local checkpoint directory, or a
name of a registered scheme (``probe:<folder>``, ``chance``, ``open_clip:<arch>:<pretrained>``): the one
resolver of model names, used by the command line and the benchmark alike.

A checkpoint directory holds ``config.json`` whose ``architecture`` picks the model class from
:data:`ARCHITECTURES` (modules imported on first use), so new architectures plug in without editing here; a
scheme of :data:`NAME_SCHEMES` maps a name prefix to the function that loads it.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from geovec.models.config import GeoVecConfig

if TYPE_CHECKING:  # torch is imported by what builds a model, not by resolving a name (geovec info on a stamp)
    from geovec.models.base import EmbeddingModel

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "geovec-compact"

ARCHITECTURES: dict[str, str] = {
    "single-encoder": "geovec.models.single_encoder:SingleEncoderModel",
    "dual-path": "geovec.models.dual_path:DualPathModel",
    "qwen2-vl": "geovec.models.qwen2vl:Qwen2VLEmbedder",
    "frozen-towers-probe": "geovec.models.probe:ProbeModel",
}

# "<scheme>:<rest>" (or the bare scheme) -> "module:function", called as function(rest, **load_model's options);
# modules imported on first use. The baselines give encoders with the encode contract, not geovec models.
NAME_SCHEMES: dict[str, str] = {
    "probe": "geovec.models.registry:load_folder",  # a probe folder, as its path: probe:~/.cache/geovec/probe/model
    "chance": "geovec.bench.encoders:chance_encoder",  # seeded random vectors: chance, chance:<dim>
    "open_clip": "geovec.bench.encoders:open_clip_encoder",  # open_clip:<arch>:<pretrained>
}


def _target(table: dict[str, str], key: str):
    module, name = table[key].split(":")
    return getattr(importlib.import_module(module), name)


def _architecture(name: str):
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; available: {sorted(ARCHITECTURES)}")
    return _target(ARCHITECTURES, name)


def architecture_of(directory: str | Path) -> str:
    """The ``architecture`` a checkpoint directory's ``config.json`` names (every architecture's config has one)."""
    return json.loads((Path(directory) / "config.json").read_text()).get("architecture", "single-encoder")


def name_scheme(name: str | Path | None) -> tuple[Callable[..., Any], str] | None:
    """``(loader, rest)`` of a name of a registered scheme (:data:`NAME_SCHEMES`), else None. A directory holding
    a checkpoint is never a scheme name, whatever it is called."""
    if name is None or isinstance(name, Path) or (Path(name) / "config.json").exists():
        return None
    scheme, _, rest = str(name).partition(":")
    return (_target(NAME_SCHEMES, scheme), rest) if scheme in NAME_SCHEMES else None


def load_folder(path: str, **options) -> EmbeddingModel:
    """The ``probe:`` scheme: the checkpoint folder at ``path`` (``~`` expanded)."""
    if not path:
        raise ValueError("probe: needs a folder, as in probe:~/.cache/geovec/probe/model")
    return load_model(Path(path).expanduser(), **options)


def _smol_untrained() -> GeoVecConfig:
    # SmolLM2-135M-Instruct as the single encoder: decoder LLM, so last-token pooling (left padding)
    return GeoVecConfig(name="geovec-smol-untrained", backbone="smol", embed_dim=576, pooling="last")


# names that build an architecture with pretrained towers and seed-0 new parts (no checkpoint directory)
UNTRAINED: dict[str, Callable[[], GeoVecConfig]] = {
    "geovec-compact-untrained": lambda: GeoVecConfig(name="geovec-compact-untrained"),
    "geovec-smol-untrained": _smol_untrained,
}


def available_models() -> list[str]:
    """Names that :func:`load_model` resolves without a path."""
    bundled = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "config.json").exists())
    return bundled + sorted(UNTRAINED)


def build_untrained(config: GeoVecConfig | None = None, seed: int = 0) -> EmbeddingModel:
    """The architecture with pretrained towers and freshly initialised new parts (seeded): the
    "frozen towers, no contrastive training" baseline and the start of every training run."""
    import torch

    config = config or GeoVecConfig(name="geovec-compact-untrained")
    torch.manual_seed(seed)
    return _architecture(config.architecture)(config)


def resolve(name_or_path: str | Path | None) -> Path | None:
    """Checkpoint directory for a name or path (None for the untrained baseline)."""
    name_or_path = name_or_path or DEFAULT_MODEL
    scheme = name_scheme(name_or_path)
    if scheme is not None and scheme[0] is load_folder:  # probe:<folder> names a folder
        name_or_path = Path(scheme[1]).expanduser()
    if str(name_or_path) in UNTRAINED:
        return None
    path = Path(name_or_path)
    if (path / "config.json").exists():
        return path
    if (WEIGHTS_DIR / str(name_or_path) / "config.json").exists():
        return WEIGHTS_DIR / str(name_or_path)
    raise FileNotFoundError(
        f"no geovec model {str(name_or_path)!r}: not a bundled name ({available_models()}) and not a directory "
        "with config.json + model.safetensors"
    )


def load_model(name_or_path: str | Path | None = None, device: str | None = None,
               num_threads: int | None = None, backend: str | None = None, precision: str | None = None,
               export_dir: str | Path | None = None, lazy: bool | None = None) -> EmbeddingModel:
    """Load a bundled model by name (default ``geovec-compact``) or a checkpoint directory.

    ``backend``: ``"auto"`` (default, or ``$GEOVEC_BACKEND``) runs the single encoder's exported graphs on
    the fastest installed runtime that matches torch on a fixed batch (cosine >= 0.9999), else torch;
    ``"onnx"`` (onnxruntime), ``"openvino"``, or ``"torch"`` (the reference) pick one. The graphs are
    exported once and cached (see :mod:`geovec.runtime.backends`). ``precision="bf16"`` (OpenVINO) and
    ``precision="int8"`` (onnxruntime) are opt-in, each held to its own faithfulness threshold. ``export_dir``: a folder written by ``geovec export onnx``. ``model.backend`` names the
    backend in use. A name of :data:`NAME_SCHEMES` loads what its scheme names (the baselines are encoders with
    the encode contract, not geovec models).

    ``lazy`` (default on; ``$GEOVEC_LAZY=0`` turns it off): where an earlier load of the same checkpoint checked its
    whole-item graphs on the ONNX backend, return a :class:`~geovec.models.graph_model.GraphModel`, which embeds
    texts and whole images without importing torch and loads the torch model the first time anything else is asked
    of it.
    """
    scheme = name_scheme(name_or_path)
    if scheme is not None:
        loader, rest = scheme
        return loader(rest, device=device, num_threads=num_threads, backend=backend, precision=precision,
                      export_dir=export_dir)
    from geovec.runtime import load_stamp

    directory = resolve(name_or_path)
    lazy = lazy_default() if lazy is None else lazy
    eager = dict(device=device, num_threads=num_threads, backend=backend, precision=precision, export_dir=export_dir,
                 lazy=False)
    # a load already checked for this checkpoint, backend and these package versions attaches what it found
    on_cpu = device is None or str(device).split(":")[0] == "cpu"
    key = load_stamp.stamp_key(directory, backend, precision, export_dir) if directory is not None and on_cpu else None
    stamp = load_stamp.read_stamp(key)
    if lazy and stamp is not None and stamp.get("items"):
        from geovec.models.graph_model import GraphModel

        graph_model = GraphModel.open(stamp["items"], directory, lambda: load_model(directory, **eager),
                                      threads=num_threads)
        if graph_model is not None:
            return graph_model
        stamp["items"] = None  # its files are gone: made again below
    from geovec.runtime.backends import apply_backend, attach_stamped
    from geovec.models.base import EmbeddingModel

    EmbeddingModel.set_num_threads(num_threads)
    if directory is None:
        model = build_untrained(UNTRAINED[str(name_or_path)]())
    else:
        model = _architecture(architecture_of(directory)).from_pretrained(directory)
    if device:
        model.to(device)
    model.eval()
    if stamp is None or not attach_stamped(model, stamp):
        apply_backend(model, backend, precision, export_dir)
        load_stamp.write_stamp(key, model, _item_graphs(model) if key is not None else False)
    elif lazy and stamp.get("items") is None:
        # a stamp from before the whole-item graphs, or whose graph files are gone: make them (again)
        load_stamp.write_stamp(key, model, _item_graphs(model))
    return model


def _item_graphs(model) -> str | bool:
    """The manifest of ``model``'s whole-item graphs (exported and checked now where not yet), or False where it has
    none (another backend or architecture, or graphs that do not match torch)."""
    from geovec.models.item_graphs import ensure_items
    from geovec.runtime.backends import log

    try:
        manifest = ensure_items(model, log=log)
    except Exception as e:  # an exporter gap must not fail the load: the torch model serves every item
        log(f"geovec: no whole-item graphs ({type(e).__name__}: {str(e)[:200]})")
        return False
    return str(manifest) if manifest is not None else False


def lazy_default() -> bool:
    return os.environ.get("GEOVEC_LAZY", "1").strip().lower() not in ("0", "false", "no", "off")
