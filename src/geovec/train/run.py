"""Run a training job from a config: ``python -m geovec.train.run --config CONFIG`` (works under torchrun)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from geovec.train import distributed as ddp
from geovec.train.config import DataSource, TrainConfig


def main(config: str | Path | None, data=None, output_dir=None, max_steps=None, eval_data_root=None,
         resume: bool = True) -> dict:
    ddp.init_from_env()
    cfg = TrainConfig.load(config) if config else TrainConfig()
    if data:
        cfg.data = [DataSource(str(p)) for p in data]
    if not cfg.data:
        raise SystemExit("no training data: give data in the config or --data FILE.jsonl")
    if output_dir:
        cfg.output_dir = str(output_dir)
    if max_steps:
        cfg.max_steps = int(max_steps)
    if eval_data_root:
        cfg.eval_data_root = str(eval_data_root)
    from geovec.train.trainer import Trainer

    trainer = Trainer(cfg)
    if cfg.eval_data_root and ddp.rank() == 0:
        trainer.evaluate = dev_evaluator(cfg, trainer)
    return trainer.run(resume=resume)


def dev_evaluator(cfg: TrainConfig, trainer):
    """The periodic dev evaluation of a run: the config's rsmeb-dev tasks through the benchmark's runner, with
    the trainer's feature and text caches, one revision per step (``<revision>-step<N>``)."""
    from geovec.train.dev_eval import DevEvaluator

    if cfg.eval_mosaics is not None:
        warnings.warn("eval_mosaics is ignored: the rsmeb-dev suite fixes its mosaics", stacklevel=2)
    return DevEvaluator(cfg.eval_data_root, Path(cfg.output_dir) / "dev", trainer.cache, tasks=cfg.eval_tasks,
                        max_queries=cfg.eval_max_queries or cfg.eval_limit, embed_fn=trainer.embed,
                        revision=cfg.revision)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", nargs="*")
    parser.add_argument("--output-dir")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--eval-data-root")
    parser.add_argument("--no-resume", action="store_true")
    a = parser.parse_args()
    main(a.config, a.data, a.output_dir, a.max_steps, a.eval_data_root, not a.no_resume)
