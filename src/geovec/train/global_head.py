"""Teach the global path's image head new imagery without letting it forget what it knew.

The global path (:mod:`geovec.models.global_path`) maps the mean-pooled features of a *frozen* vision tower into
the text tower's sentence space with one MLP, :class:`~geovec.models.global_path.ImageHead`, trained on RSICD
image-caption pairs. The tower's features already tell a parked car from a tennis court and a 10 m scene from a
0.5 m one; the head has simply never been asked to. This continues training the head alone, on cached pooled
features (the towers never run during training), with three terms:

* **regions**: pooled features of box crops (in dihedral views) -> their class name among every class name:
  cross-entropy over the cosine similarities to the class texts' sentence embeddings at a fixed temperature; the
  text of a class alternates between templates (e.g. "a remote sensing image of {}." and the bare name);
* **sensor views**: sensor-simulated views (:mod:`geovec.train.sensor_sim`, another ground sampling distance,
  blur, radiometry) of the anchor images -> the head's *original* output for the clean image (cosine), so a
  Sentinel-2-like view of a scene embeds like the scene;
* **anchor**: the anchor images' clean view -> the head's original output (cosine): learning without forgetting
  (Li and Hoiem, 2017), here as a feature-level distillation on the images the head was trained on.

The text side, the towers and the encoder half stay as they are, so a document embedded before adapting embeds the
same after; only items with an image part move. ``benchmarks/train_global_head.py`` builds the caches and writes the
adapted dual-path model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geovec.train.cached_loop import TopRun, epoch_seed, optimizer, run_epochs


@dataclass
class HeadAdaptConfig:
    steps: int = 600
    steps_per_epoch: int = 100  # a checkpoint (and a dev evaluation) after every epoch of this many steps
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    region_batch: int = 128
    anchor_batch: int = 256
    region_weight: float = 1.0
    sensor_weight: float = 1.0
    anchor_weight: float = 1.0
    temperature: float = 0.05  # of the region -> class-name cross-entropy
    seed: int = 0


@dataclass
class RegionSet:
    """Pooled features of labelled box crops: ``features`` (N, V, C), V views of each crop; ``labels`` (N,) class
    indices into ``class_texts`` (T, K, d): the unit sentence embeddings of the K class names under T templates."""

    features: np.ndarray
    labels: np.ndarray
    class_texts: torch.Tensor

    def __post_init__(self):
        self.features = np.asarray(self.features)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.features.ndim != 3:
            raise ValueError(f"region features need shape (crops, views, channels), got {self.features.shape}")
        if len(self.labels) != len(self.features):
            raise ValueError(f"{len(self.features)} region crops but {len(self.labels)} labels")
        if self.class_texts.ndim != 3:
            raise ValueError(f"class texts need shape (templates, classes, dim), got {tuple(self.class_texts.shape)}")
        k = self.class_texts.shape[1]
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= k):
            bad = int(next(i for i, y in enumerate(self.labels) if not 0 <= y < k))
            raise ValueError(f"region crop {bad} has label {int(self.labels[bad])}, but there are {k} class names")


def adapt_image_head(head: nn.Module, anchor: np.ndarray, regions: RegionSet | None = None,
                     sensor_views: Sequence[np.ndarray] = (), config: HeadAdaptConfig | None = None,
                     run_dir: str | Path | None = None, evaluate: Callable[[], dict] | None = None,
                     log: Callable[[str], None] | None = print) -> list[dict]:
    """Train ``head`` in place (see the module docstring); returns one record per epoch (mean loss, ``val`` from
    ``evaluate()``). ``anchor`` (M, C): pooled features of the clean anchor images; ``sensor_views``: (M, C) arrays
    of simulated views of the same images, row for row. With ``run_dir`` a checkpoint follows every epoch and a
    rerun continues from the last one (the draws of an epoch derive from the seed and the epoch, so a resumed run
    ends where an uninterrupted one does)."""
    cfg = config or HeadAdaptConfig()
    anchor_t = torch.from_numpy(np.asarray(anchor, dtype=np.float32))
    sensors = [torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in sensor_views]
    for k, v in enumerate(sensors):
        if v.shape != anchor_t.shape:
            raise ValueError(f"sensor view {k} has shape {tuple(v.shape)}, the anchor features {tuple(anchor_t.shape)}: "
                             "a sensor view must hold one row per anchor image, in the same order")
    if regions is None and not sensors:
        raise ValueError("nothing to adapt to: give region crops, sensor views or both")
    # the targets: what the head says now, before any step (a resumed run recomputes them from the saved original)
    run = TopRun(run_dir) if run_dir is not None else None
    original = copy.deepcopy(head).eval()
    if run is not None and (run.dir / "original_head.pt").exists():
        original.load_state_dict(torch.load(run.dir / "original_head.pt", weights_only=True))
    elif run is not None:
        run.dir.mkdir(parents=True, exist_ok=True)
        torch.save(original.state_dict(), run.dir / "original_head.pt")
    with torch.no_grad():
        target = F.normalize(original(anchor_t), dim=-1)
    log_scale = nn.Parameter(torch.tensor(float(np.log(1 / cfg.temperature))), requires_grad=False)
    start, opt_state = 0, None
    if run is not None:
        start, opt_state, _ = run.resume_modules({"head": head}, log_scale, log)
    epochs = -(-cfg.steps // cfg.steps_per_epoch)

    def batches(epoch: int):
        rng = np.random.default_rng(epoch_seed(cfg.seed, epoch))
        while True:
            batch = {"anchor": torch.from_numpy(rng.integers(0, len(anchor_t), cfg.anchor_batch))}
            if regions is not None:
                idx = rng.integers(0, len(regions.features), cfg.region_batch)
                view = rng.integers(0, regions.features.shape[1], cfg.region_batch)
                batch["regions"] = (torch.from_numpy(np.asarray(regions.features[idx, view], dtype=np.float32)),
                                    torch.from_numpy(regions.labels[idx]), int(rng.integers(len(regions.class_texts))))
            if sensors:
                batch["sensor"] = (int(rng.integers(len(sensors))),
                                   torch.from_numpy(rng.integers(0, len(anchor_t), cfg.anchor_batch)))
            yield batch

    def agreement(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return (1 - (F.normalize(head(x), dim=-1) * target[rows]).sum(-1)).mean()

    def loss_of(batch: dict) -> torch.Tensor:
        loss = cfg.anchor_weight * agreement(anchor_t[batch["anchor"]], batch["anchor"])
        if "regions" in batch:
            x, y, t = batch["regions"]
            logits = F.normalize(head(x), dim=-1) @ regions.class_texts[t].T / cfg.temperature  # type: ignore[union-attr]
            loss = loss + cfg.region_weight * F.cross_entropy(logits, y)
        if "sensor" in batch:
            k, rows = batch["sensor"]
            loss = loss + cfg.sensor_weight * agreement(sensors[k][rows], rows)
        return loss

    opt = optimizer([(list(head.parameters()), cfg.lr)], cfg.weight_decay, opt_state)
    return run_epochs(opt, {"head": head}, log_scale, batches, loss_of, epochs, cfg.steps_per_epoch,
                      cfg.warmup_steps, total_steps=cfg.steps, start_epoch=start, evaluate=evaluate,
                      checkpoint=run.save if run is not None else None, log=log, log_every=0,
                      label="image head: ")


def agreement_with(head: nn.Module, original: nn.Module, features: np.ndarray) -> float:
    """Mean cosine between ``head``'s and ``original``'s unit outputs on ``features`` (N, C): how much of what the
    head said it still says."""
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    with torch.no_grad():
        return float((F.normalize(head(x), dim=-1) * F.normalize(original(x), dim=-1)).sum(-1).mean())


def read_region_file(path: str | Path) -> tuple[list[dict], list[str]]:
    """Labelled boxes of your own imagery, one JSON object per line: ``{"image": <path, relative to the file's
    folder or absolute>, "box": [x1, y1, x2, y2] (pixels), "class": <name>}``. Returns ``(samples, class names)``:
    samples as :class:`~geovec.data.NWPUVHR10`'s (``image``, ``box``, ``label``, ``class_name``), the class names
    sorted. A line that is not such an object is an error naming the file and the line."""
    from geovec.train.data import json_lines

    path = Path(path)
    rows: list[tuple[str, Path, list[float], str]] = []
    for where, obj in json_lines(path):
        if not isinstance(obj, dict) or not {"image", "box", "class"} <= set(obj):
            raise ValueError(f"{where}: needs the keys image, box and class")
        box = obj["box"]
        if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box)
                or not (box[0] < box[2] and box[1] < box[3]) or min(box) < 0):
            raise ValueError(f"{where}: box must be [x1, y1, x2, y2] pixels with x1 < x2 and y1 < y2, got {box!r}")
        name = str(obj["class"]).strip()
        if not name:
            raise ValueError(f"{where}: empty class name")
        image = Path(obj["image"]).expanduser()
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            raise ValueError(f"{where}: image {image} does not exist")
        rows.append((where, image, [float(v) for v in box], name))
    if not rows:
        raise ValueError(f"{path.name}: no labelled boxes")
    classes = sorted({r[3] for r in rows})
    if len(classes) < 2:
        raise ValueError(f"{path.name}: every box is {classes[0]!r}; naming a box needs at least two classes")
    index = {c: i for i, c in enumerate(classes)}
    return [{"image": image, "box": box, "label": index[name], "class_name": name} for _, image, box, name in rows], classes
