"""Checkpoints: ``config.json`` + ``model.safetensors`` holding only the trained parameters (plus the two small
files that let sentence-transformers load the directory: ``modules.json``, ``config_sentence_transformers.json``).

Frozen pretrained parts (towers, base language models) are rebuilt from their packages or ``backbone_path``
on load, so a checkpoint stays small. Shared by every architecture that has ``config``,
``trainable_state_dict()`` and ``is_trainable_name(name)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

WEIGHTS_FILE = "model.safetensors"


def save_trained(model, directory: str | Path, dtype: torch.dtype | None = None, state: dict | None = None,
                 config=None) -> Path:
    """Write ``config`` (default ``model.config``) and ``state`` (default ``model.trainable_state_dict()``)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = config or model.config
    config.to_json(directory / "config.json")
    state = model.trainable_state_dict() if state is None else state
    state = {n: (t.to(dtype) if dtype else t).contiguous().cpu() for n, t in state.items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "geovec": config.name})
    if hasattr(model, "prompts"):  # the directory loads as a sentence-transformers model too
        from geovec.integrations.sentence_transformers_files import write_sentence_transformers_files

        write_sentence_transformers_files(model, directory)
    return directory


def load_trained(model, directory: str | Path, required: bool = True, ignore_missing: tuple[str, ...] = (),
                 skip: tuple[str, ...] = ()) -> None:
    """Copy the checkpoint's tensors into ``model``; refuse files that do not fit it exactly (trained parameters
    starting with one of ``ignore_missing`` may be absent: a model built from parts fills them itself; tensors of
    the file starting with one of ``skip`` are not read: that part comes from elsewhere)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        if required:
            raise FileNotFoundError(f"{weights} is missing: a geovec checkpoint is config.json + {WEIGHTS_FILE}")
        return
    state = {n: t for n, t in load_file(str(weights)).items() if not (skip and n.startswith(skip))}
    own = dict(model.named_parameters())
    unknown = sorted(set(state) - set(own))
    missing = sorted(n for n in own if model.is_trainable_name(n) and n not in state and not n.startswith(ignore_missing))
    if unknown or missing:
        raise ValueError(f"checkpoint {directory} does not fit the model: unknown {unknown[:5]}, missing {missing[:5]}")
    with torch.no_grad():
        for n, t in state.items():
            if own[n].shape != t.shape:
                raise ValueError(f"checkpoint {directory}: {n} has shape {tuple(t.shape)}, model {tuple(own[n].shape)}")
            own[n].copy_(t.to(own[n].dtype))
