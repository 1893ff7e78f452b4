"""The one loop for training on cached features (the probe's image head and location map, the global path's vision
top, the text top): epochs of batches drawn by the caller, AdamW under :func:`warmup_cosine` (the schedule
:class:`~geovec.train.trainer.Trainer` uses too), a record per epoch, progress lines and checkpoints that resume
exactly. What a batch is and how the loss scores it stay with each trainer; the random draws of an epoch come from
the caller's ``batches(epoch)``, so a trainer seeding per epoch (:func:`epoch_seed`) replays any epoch on resume.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from geovec.train.loss import capped_scale


def warmup_cosine(step: int, total: int, warmup: int, base: float = 1.0, min_ratio: float = 0.0) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: linear warm-up over ``warmup`` steps to ``base``, then
    cosine decay to ``min_ratio * base``. ``base=1`` gives the factor for a ``LambdaLR``."""
    if step < warmup:
        return base * (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's draws: a resumed run draws what the uninterrupted run drew."""
    return seed * 1000 + epoch


def optimizer(groups: list[tuple[list[nn.Parameter], float]], weight_decay: float,
              state: dict | None = None) -> torch.optim.AdamW:
    """AdamW over ``(parameters, learning rate)`` groups; each group keeps its ``base`` rate for the schedule;
    ``state``: an optimizer state dict to resume from."""
    opt = torch.optim.AdamW([{"params": list(ps), "lr": lr, "base": lr} for ps, lr in groups],
                            weight_decay=weight_decay)
    if state is not None:
        opt.load_state_dict(state)
    return opt


def run_epochs(opt: torch.optim.Optimizer, modules: dict[str, nn.Module], log_scale: nn.Parameter,
               batches: Callable[[int], Iterator[Any]], loss_of: Callable[[Any], torch.Tensor], epochs: int,
               steps_per_epoch: int, warmup_steps: int, total_steps: int | None = None, start_epoch: int = 0,
               evaluate: Callable[[], dict] | None = None, checkpoint: Callable[[int, dict], Any] | None = None,
               log: Callable[[str], None] | None = print, log_every: int = 0, label: str = "",
               step_losses: list[float] | None = None) -> list[dict]:
    """Train ``modules`` (+ the learnable ``log_scale``) from ``start_epoch`` to ``epochs``; returns one record
    per epoch run (epoch, steps, mean loss, seconds, temperature, ``evaluate()``'s scores under ``val``).

    ``batches(epoch)`` yields that epoch's batches (at least ``steps_per_epoch``); ``loss_of(batch)`` is the loss of
    one. ``total_steps`` (default: all) ends training early; the schedule decays over it. The modules train during
    an epoch's steps and are in eval mode for ``evaluate`` and after the loop. ``checkpoint(epoch + 1, state)``
    gets every module's state dict under its name, ``logit_scale``, ``opt`` and the ``history``. ``log_every``: a
    progress line every that many steps; ``step_losses``: a list that gets every step's loss."""
    total = epochs * steps_per_epoch if total_steps is None else min(total_steps, epochs * steps_per_epoch)
    history: list[dict] = []
    for epoch in range(start_epoch, epochs):
        for m in modules.values():
            m.train()
        draws, t0, losses = iter(batches(epoch)), time.perf_counter(), []
        for b in range(steps_per_epoch):
            step = epoch * steps_per_epoch + b
            if step >= total:
                break
            batch = next(draws)
            for g in opt.param_groups:
                g["lr"] = warmup_cosine(step, total, warmup_steps, g["base"])
            loss = loss_of(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if log and log_every and (b + 1) % log_every == 0:
                log(f"{label}epoch {epoch + 1} step {b + 1}/{steps_per_epoch} loss {np.mean(losses[-log_every:]):.4f}")
        if step_losses is not None:
            step_losses.extend(losses)
        for m in modules.values():
            m.eval()
        steps = min(total, (epoch + 1) * steps_per_epoch)
        history.append(_epoch_record(epoch, epochs, steps, losses, t0, log_scale, evaluate, log, label))
        if checkpoint is not None:
            checkpoint(epoch + 1, {**{name: m.state_dict() for name, m in modules.items()},
                                   "logit_scale": log_scale.detach().clone(), "opt": opt.state_dict(),
                                   "history": history})
        if steps >= total:
            break
    for m in modules.values():
        m.eval()
    return history


def _epoch_record(epoch: int, epochs: int, steps: int, losses: list[float], t0: float, log_scale: nn.Parameter,
                  evaluate: Callable[[], dict] | None, log: Callable[[str], None] | None, label: str) -> dict:
    rec = {"epoch": epoch + 1, "steps": steps, "loss": float(np.mean(losses)) if losses else float("nan"),
           "seconds": round(time.perf_counter() - t0, 2),
           "temperature": float(1 / capped_scale(log_scale.detach()))}
    if evaluate is not None:
        rec["val"] = evaluate()
    if log:
        scores = "".join(f" {k} {v:.2f}" for k, v in rec.get("val", {}).items() if isinstance(v, float))
        log(f"{label}epoch {epoch + 1}/{epochs} loss {rec['loss']:.4f} T {rec['temperature']:.4f} "
            f"({rec['seconds']} s){scores}")
    return rec


class TopRun:
    """The run folder of a top + head training (``<run_dir>/checkpoint.pt``): :meth:`resume` restores the weights
    of the last finished epoch and returns ``(start_epoch, optimizer state, past history)``; :meth:`save` is the
    ``checkpoint`` callback of the trainers (written to a temporary file and renamed, so a kill never leaves half a
    checkpoint)."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.path = self.dir / "checkpoint.pt"
        self.past: list[dict] = []

    def resume(self, top: nn.Module, head: nn.Module, logit_scale: nn.Parameter,
               log: Callable[[str], None] | None = None) -> tuple[int, dict | None, list[dict]]:
        return self.resume_modules({"top": top, "head": head}, logit_scale, log)

    def resume_modules(self, modules: dict[str, nn.Module], logit_scale: nn.Parameter,
                       log: Callable[[str], None] | None = None) -> tuple[int, dict | None, list[dict]]:
        """:meth:`resume` for any modules, each saved under its name (``run_epochs``' ``modules``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return 0, None, []
        ck = torch.load(self.path, weights_only=False)
        for name, module in modules.items():
            module.load_state_dict(ck[name])
        with torch.no_grad():
            logit_scale.copy_(ck["logit_scale"])
        self.past = list(ck["history"])
        if log:
            log(f"resuming after epoch {ck['epoch']}")
        return int(ck["epoch"]), ck["opt"], self.past

    def save(self, epoch: int, state: dict) -> list[dict]:
        """Write the checkpoint after ``epoch``; returns the whole history (resumed epochs included)."""
        history = self.past + state["history"]
        tmp = self.path.with_suffix(".tmp")
        torch.save({**state, "epoch": epoch, "history": history}, tmp)
        os.replace(tmp, self.path)
        return history
