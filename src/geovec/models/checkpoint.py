"""Checkpoints: ``config.json`` + ``model.safetensors`` holding only the trained parameters (plus the two small
files that let sentence-transformers load the directory: ``modules.json``, ``config_sentence_transformers.json``).

Frozen pretrained parts (towers, base language models) are rebuilt from their packages or ``backbone_path``
on load, so a checkpoint stays small. Shared by every architecture that has ``config``,
``trainable_state_dict()`` and ``is_trainable_name(name)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

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


def save_pretrained(model, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
    """:func:`save_trained` of a model that may carry LoRA adapters (``model.lora_merged_state()``): they are merged
    into the weights they adapt, which the saved config then lists as trained, so the checkpoint loads without
    peft."""
    from dataclasses import asdict

    from geovec.models import lora
    from geovec.models.config import GeoVecConfig

    merged = model.lora_merged_state()
    if not merged:
        return save_trained(model, directory, dtype)
    state = {lora.unwrapped_name(n): p.detach() for n, p in model.named_parameters()
             if model.is_trainable_name(n) and "lora_" not in n}
    state.update(merged)
    trainable = sorted(set(model.config.trainable) | set(merged))
    config = GeoVecConfig.from_dict({**asdict(model.config), "trainable": trainable})
    return save_trained(model, directory, dtype, state=state, config=config)


def load_trained(model, directory: str | Path, required: bool = True, upgrade=None) -> None:
    """Copy the checkpoint's tensors into ``model``; refuse files that do not fit it exactly. ``upgrade(state) ->
    state``: renames the file's tensors first (default ``model.upgrade_state_dict`` where the model has one: a
    checkpoint of an older parameter layout of its architecture; a part of a bigger model picks its share)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        if required:
            raise FileNotFoundError(f"{weights} is missing: a geovec checkpoint is config.json + {WEIGHTS_FILE}")
        return
    state = load_file(str(weights))
    upgrade = upgrade or getattr(model, "upgrade_state_dict", None)
    if upgrade is not None:
        state = upgrade(state)
    own = dict(model.named_parameters())
    unknown = sorted(set(state) - set(own))
    missing = sorted(n for n in own if model.is_trainable_name(n) and n not in state)
    if unknown or missing:
        raise ValueError(f"checkpoint {directory} does not fit the model: unknown {unknown[:5]}, missing {missing[:5]}")
    copy_tensors(own, state, f"checkpoint {directory}")


def copy_tensors(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy each tensor of ``state`` into the parameter of ``own`` of the same name (in its dtype); a shape that
    does not fit is a ValueError naming ``where``. Names of ``state`` that ``own`` lacks are skipped: refusing them
    is the caller's rule."""
    with torch.no_grad():
        for n, t in state.items():
            if n not in own:
                continue
            if own[n].shape != t.shape:
                raise ValueError(f"{where}: {n} has shape {tuple(t.shape)}, model {tuple(own[n].shape)}")
            own[n].copy_(t.to(own[n].dtype))
