"""The training loop: mixed-task contrastive batches -> (GradCache) InfoNCE -> AdamW with warmup + cosine.

Resume is exact: a checkpoint holds the trained parameters, optimizer and schedule, the sampler's order and
every random state, so "train 2N steps" and "train N, stop, resume, train N" end with the same weights.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from geovec.progress import Progress
from geovec.train import distributed as ddp
from geovec.train.cached_loop import warmup_cosine
from geovec.train.config import TrainConfig
from geovec.train.data import MixtureSampler, build_batch, positive_mask, read_jsonl
from geovec.train.gradcache import gradcache_backward
from geovec.train.loss import info_nce
from geovec.train.prepare import prepare_items

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 1.0


def load_base_model(name_or_path: str, seed: int = 0, overrides: dict | None = None):
    """The model training starts from: the untrained architecture (with ``overrides`` of its config
    fields) or a saved checkpoint."""
    from geovec.models.config import GeoVecConfig
    from geovec.models.registry import build_untrained, load_model

    if name_or_path == "geovec-compact-untrained":
        config = GeoVecConfig.from_dict({"name": "geovec-compact-untrained", **(overrides or {})})
        return build_untrained(config, seed=seed)
    if overrides:
        raise ValueError("model_overrides apply to a fresh base model only, not to a trained checkpoint")
    return load_model(name_or_path)


class TextStateCache:
    """Pooled encoder states of text-only inputs, keyed by (text, instruction).

    Valid while nothing on a text-only input's path trains except the projection head (no encoder layer,
    token-type embedding or LoRA): the pooled state is then a constant and only the head needs a graph, so
    text inputs cost a no-grad forward once and nothing after ("locked text", as in LiT)."""

    def __init__(self, model, path: str | os.PathLike | None = None):
        self.model = model
        self.states: dict[tuple, torch.Tensor] = {}
        self.path = Path(path) if path else None
        if self.path is not None and self.path.exists():
            self.states = torch.load(self.path, weights_only=False)

    def save(self) -> None:
        """Persist the states (valid for any model with the same frozen encoder and type embeddings)."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            torch.save(self.states, tmp)
            os.replace(tmp, self.path)

    @staticmethod
    def applies(model) -> bool:
        """The model says so (:attr:`~geovec.models.base.EmbeddingModel.text_states_cacheable`): its embedding is
        head(pooled states) and nothing on a text-only item's encoder path trains."""
        return bool(model.text_states_cacheable)

    @staticmethod
    def key(prepared) -> tuple | None:
        if tuple(prepared.order) == ("text",):
            return (prepared.text, prepared.instruction)
        return None

    def embed(self, prepared) -> torch.Tensor:
        m = self.model
        keys = [self.key(p) for p in prepared]
        rest = [i for i, k in enumerate(keys) if k is None]
        missing = [i for i, k in enumerate(keys) if k is not None and k not in self.states]
        if missing:
            with torch.no_grad():
                pooled = m.pool_prepared([prepared[i] for i in missing])
            for i, v in zip(missing, pooled):
                self.states[keys[i]] = v.detach()
        out: list[torch.Tensor | None] = [None] * len(prepared)
        cached = [i for i, k in enumerate(keys) if k is not None]
        if cached:
            heads = m.project(torch.stack([self.states[keys[i]] for i in cached]))
            for j, i in enumerate(cached):
                out[i] = heads[j]
        if rest:
            emb = m.embed_prepared([prepared[i] for i in rest])
            for j, i in enumerate(rest):
                out[i] = emb[j]
        return torch.stack(out)


def _accepts_step(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "step" or p.kind is p.VAR_KEYWORD for p in params)


def apply_lora(model, lora: dict) -> list[str]:
    """Add LoRA adapters (:mod:`geovec.models.lora` settings) to the model's transformer; returns the adapter
    parameter names."""
    return model.add_lora(lora)


def lora_merged_state(model) -> dict[str, torch.Tensor]:
    """Base weights with the LoRA update merged in, under the names a model without adapters uses."""
    return model.lora_merged_state()


class Trainer:
    """Train ``model`` on ``config`` (see :class:`TrainConfig`); ``evaluate(model) -> dict`` (or
    ``evaluate(model, step=) -> dict``, e.g. :class:`geovec.train.dev_eval.DevEvaluator`) is called every
    ``eval_every`` steps and at the end, and its scores go to the metrics log."""

    def __init__(self, config: TrainConfig, model=None, evaluate: Callable | None = None, data=None):
        self.cfg = cfg = config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.rank, self.world = ddp.rank(), ddp.world_size()
        torch.manual_seed(cfg.seed)
        self.model = model if model is not None else load_base_model(cfg.base_model, cfg.seed, cfg.model_overrides)
        m = self.model
        # what a trained base checkpoint carries beyond this run's trainable parts (a dual-path base's global path)
        # is saved with the result, so the saved model loads whole
        base_parts = list(m.config.trainable or []) if cfg.base_model != "geovec-compact-untrained" else []
        if cfg.trainable is not None:
            m.apply_trainable(cfg.trainable)
        self.kept_parts = [p for p in base_parts if p not in m.config.trainable]
        self.lora_names = apply_lora(m, cfg.lora) if cfg.lora else []
        for n, p in m.named_parameters():
            p.requires_grad_(m.is_trainable_name(n) or n in self.lora_names)
        with torch.no_grad():
            m.logit_scale.fill_(math.log(1.0 / cfg.temperature))
        m.logit_scale.requires_grad_(cfg.learn_temperature)
        self.params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("nothing to train: no parameter matches the trainable prefixes")
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        sources = data
        if sources is None:
            sources = []
            for s in cfg.data:
                examples = s.select(read_jsonl(s.path))
                for ex in examples:
                    ex.max_negatives = s.hard_negatives
                sources.append(examples)
        weights = [s.weight for s in cfg.data] if data is None else [1.0] * len(sources)
        self.sampler = MixtureSampler(sources, weights, cfg.batch_size, seed=cfg.seed * 1000 + self.rank,
                                      homogeneous=cfg.task_homogeneous)
        self.batch_rng = np.random.default_rng(cfg.seed * 1000 + 7 + self.rank)
        self.cache = None
        if cfg.feature_cache:
            if m.supports_image_features and m.image_tower_frozen:
                from geovec.train.feature_cache import FeatureCache

                self.cache = FeatureCache(cfg.feature_cache, m)
            else:
                import warnings

                warnings.warn(f"feature_cache is not used: {type(m).__name__} "
                              + ("has no separable vision tower" if not m.supports_image_features
                                 else "trains its vision tower"), stacklevel=2)
        self.text_cache = None
        if cfg.text_cache and TextStateCache.applies(m):
            self.text_cache = TextStateCache(m, cfg.text_cache_file)
        self.embed = self.text_cache.embed if self.text_cache is not None else m.embed_prepared
        self.evaluate = evaluate
        self.step = 0
        self.out = Path(cfg.output_dir)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="geovec-train-prep")

    # --- optimisation ----------------------------------------------------------------------------------------
    def _param_groups(self):
        groups = {("new", True): [], ("new", False): [], ("enc", True): [], ("enc", False): []}
        for n, p in self.params:
            kind = "enc" if n.startswith(tuple(self.model.pretrained_prefixes)) else "new"
            decay = p.ndim >= 2 and "type_embed" not in n
            groups[(kind, decay)].append(p)
        cfg = self.cfg
        return [{"params": ps, "lr": cfg.encoder_lr if kind == "enc" else cfg.lr,
                 "weight_decay": cfg.weight_decay if decay else 0.0}
                for (kind, decay), ps in groups.items() if ps]

    def _lr_factor(self, step: int) -> float:
        cfg = self.cfg
        return warmup_cosine(step, cfg.max_steps, cfg.warmup_steps, min_ratio=cfg.min_lr_ratio)

    def _set_modes(self) -> None:
        m = self.model
        m.train(self.cfg.dropout)
        for module in m.frozen_modules():  # BatchNorm statistics of frozen towers must not move
            module.eval()

    # --- one step --------------------------------------------------------------------------------------------
    def train_step(self) -> dict:
        cfg, m = self.cfg, self.model
        self._set_modes()
        t0 = time.perf_counter()
        batch = build_batch(self.sampler.next_examples(), m, self.batch_rng, cfg.positives_per_query,
                            cfg.hard_negatives)
        q_prep = prepare_items(m, batch.queries, self.cache, self.pool, fill_missing=True)
        c_prep = prepare_items(m, batch.candidates, self.cache, self.pool, fill_missing=True)
        t_prep = time.perf_counter() - t0
        # global positive mask over all ranks' queries and candidates
        keys = ddp.gather_objects((batch.query_pos_keys, batch.query_groups, batch.candidate_keys,
                                   batch.candidate_groups))
        qk = [k for part in keys for k in part[0]]
        qg = [g for part in keys for g in part[1]]
        ck = [k for part in keys for k in part[2]]
        cg = [g for part in keys for g in part[3]]
        mask = positive_mask(qk, qg, ck, cg)

        def loss_fn(q, c):
            scale = m.logit_scale.exp()
            return info_nce(ddp.gather_keep_grad(q), ddp.gather_keep_grad(c), mask, scale,
                            symmetric=cfg.symmetric) * self.world

        self.optimizer.zero_grad(set_to_none=True)
        if cfg.chunk_size and cfg.chunk_size < max(len(q_prep), len(c_prep)):
            loss = gradcache_backward(self.embed, [q_prep, c_prep], loss_fn, cfg.chunk_size)
        else:
            loss = loss_fn(self.embed(q_prep), self.embed(c_prep))
            loss.backward()
            loss = loss.detach()
        params = [p for _, p in self.params]
        ddp.all_reduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip else torch.tensor(0.0)
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            m.logit_scale.clamp_(math.log(1 / MAX_TEMPERATURE), math.log(1 / MIN_TEMPERATURE))
        self.step += 1
        dt = time.perf_counter() - t0
        return {"step": self.step, "loss": float(loss) / self.world, "grad_norm": float(grad_norm),
                "lr": self.scheduler.get_last_lr()[0], "temperature": float(1 / m.logit_scale.detach().exp()),
                "queries": len(batch.queries) * self.world, "candidates": len(ck),
                "pairs_per_s": len(batch.queries) * self.world / dt, "step_s": dt, "prep_s": t_prep,
                "tasks": {t: batch.tasks.count(t) for t in sorted(set(batch.tasks))}}

    # --- loop ------------------------------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"time": time.time(), **record}) + "\n")

    def run(self, resume: bool = True, show_progress_bar: bool | None = None, stop_at: int | None = None) -> dict:
        """Train to ``max_steps`` (resuming from ``output_dir/checkpoint`` if there is one). ``stop_at``: stop
        after that step with a checkpoint, as an interruption would (the schedule still targets max_steps)."""
        cfg = self.cfg
        if resume and (self.out / "checkpoint" / "trainer_state.pt").exists():
            self.load_checkpoint(self.out / "checkpoint")
        if self.rank == 0 and self.step == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        bar = Progress(cfg.max_steps, "train", "step", enabled=show_progress_bar is not False and self.rank == 0,
                       initial=self.step)
        last = {}
        started = time.time()
        while self.step < cfg.max_steps:
            if stop_at is not None and self.step >= stop_at:
                self.save_checkpoint(self.out / "checkpoint")
                bar.close()
                return last
            rec = self.train_step()
            last = rec
            bar.update(1, f"loss {rec['loss']:.3f}, T {rec['temperature']:.3f}, {rec['pairs_per_s']:.1f} pairs/s")
            if self.step % cfg.log_every == 0 or self.step == 1:
                self.log({"kind": "train", **rec})
            if self.evaluate is not None and cfg.eval_every and self.step % cfg.eval_every == 0 \
                    and self.step < cfg.max_steps:
                self._eval()
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save_checkpoint(self.out / "checkpoint")
                if self.text_cache is not None and self.rank == 0:
                    self.text_cache.save()
        bar.close()
        if self.text_cache is not None and self.rank == 0:
            self.text_cache.save()
        if self.evaluate is not None:
            last = {**last, **self._eval()}
        self.save_checkpoint(self.out / "checkpoint")
        if self.rank == 0:
            self.save_model(self.out / "model")
        self.log({"kind": "done", "step": self.step, "wall_s": time.time() - started})
        return last

    def _eval(self) -> dict:
        if self.rank != 0:
            return {}
        t = time.time()
        scores = self.evaluate(self.model, step=self.step) if _accepts_step(self.evaluate) else self.evaluate(self.model)
        self.log({"kind": "eval", "step": self.step, "eval_s": time.time() - t, **scores})
        return scores

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save_checkpoint(self, directory: Path) -> None:
        if self.rank != 0:
            return
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "params": {n: p.detach().clone() for n, p in self.params},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "batch_rng": self.batch_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "config": self.cfg.to_dict(),
        }
        tmp = directory / "trainer_state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, directory / "trainer_state.pt")

    def load_checkpoint(self, directory: Path) -> None:
        state = torch.load(Path(directory) / "trainer_state.pt", weights_only=False)
        own = dict(self.params)
        if set(state["params"]) != set(own):
            raise ValueError(f"checkpoint {directory} trains other parameters than this config")
        with torch.no_grad():
            for n, t in state["params"].items():
                own[n].copy_(t)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.batch_rng.bit_generator.state = state["batch_rng"]
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        self.step = int(state["step"])

    def save_model(self, directory: Path, dtype: torch.dtype = torch.float32) -> Path:
        """A loadable geovec checkpoint (config.json + model.safetensors with the trained parts only); the
        model's ``save_pretrained`` merges LoRA adapters into the backbone weights they adapt."""
        m = self.model
        if self.cfg.revision:
            m.config.revision = self.cfg.revision
        trained = list(m.config.trainable)
        m.config.trainable = trained + self.kept_parts
        try:
            return m.save_pretrained(directory, dtype=dtype)
        finally:
            m.config.trainable = trained
