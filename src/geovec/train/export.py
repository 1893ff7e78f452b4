"""Export trained weights as a named geovec checkpoint (config.json + model.safetensors, trained parts only)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def export_model(source: str | Path, out_dir: str | Path, name: str = "geovec-compact", revision: str | None = None,
                 fp16: bool = False) -> Path:
    """``source``: a saved model folder (config.json + model.safetensors) or a run's ``checkpoint/`` folder
    (its run's ``train_config.json`` is read to rebuild the model). Returns the written folder."""
    from geovec.models.registry import load_model

    source = Path(source)
    if (source / "trainer_state.pt").exists():
        from geovec.train.config import TrainConfig
        from geovec.train.trainer import Trainer

        cfg = TrainConfig.from_dict(json.loads((source.parent / "train_config.json").read_text()))
        cfg.data, cfg.feature_cache, cfg.text_cache = [], None, False
        trainer = Trainer(cfg, data=[[]])
        state = torch.load(source / "trainer_state.pt", weights_only=False)
        own = dict(trainer.params)
        with torch.no_grad():
            for n, t in state["params"].items():
                own[n].copy_(t)
        model = trainer.model
        if cfg.revision:
            model.config.revision = cfg.revision
        step = int(state["step"])
    else:
        model = load_model(source)
        step = None
    model.config.name = name
    if revision:
        model.config.revision = revision
    elif step is not None:
        model.config.revision = f"{model.config.revision}-step{step}"
    model.apply_trainable(model.config.trainable)
    return model.save_pretrained(out_dir, dtype=torch.float16 if fp16 else torch.float32)
