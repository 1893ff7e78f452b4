"""``geovec train``: fine-tune a geovec model on JSONL data, and build the default training mixture."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Contrastive training (InfoNCE, GradCache, multi-process) and training data.",
                            no_args_is_help=True)

    @train_app.callback(invoke_without_command=True)
    def train(
        ctx: typer.Context,
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="Training config (YAML or JSON)."),
        data: Optional[List[Path]] = typer.Option(None, "--data", help="JSONL training file(s); replace the config's data."),
        output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Run folder (checkpoints, metrics.jsonl, model/)."),
        max_steps: Optional[int] = typer.Option(None, help="Override the config's max_steps."),
        eval_data_root: Optional[Path] = typer.Option(None, help="Data root with the rsmeb-dev material for dev evaluation during training."),
        no_resume: bool = typer.Option(False, "--no-resume", help="Start over even if the run folder has a checkpoint."),
    ) -> None:
        """Train: ``geovec train --config CONFIG [--data FILE.jsonl ...]``. Resumes from OUTPUT_DIR/checkpoint.
        Multi-process: ``torchrun --nproc_per_node N -m geovec.train.run --config CONFIG``."""
        if ctx.invoked_subcommand is not None:
            return
        if config is None and not data:
            raise typer.BadParameter("give --config CONFIG and/or --data FILE.jsonl")
        from geovec.train.run import main

        main(config, data=data, output_dir=output_dir, max_steps=max_steps, eval_data_root=eval_data_root,
             resume=not no_resume)

    @train_app.command("build-data")
    def build_data(
        out_dir: Path = typer.Argument(..., help="Folder for the JSONL files, mosaics and geo chips."),
        data_root: Optional[Path] = typer.Option(None, help="../shared/data layout (default: $GEOVEC_DATA_ROOT or ../shared/data)."),
        mosaics: int = typer.Option(300, help="Number of training mosaics (region pairs)."),
        seed: int = typer.Option(0, help="Seed of the training mosaics."),
        composed: int = typer.Option(300, help="Number of base mosaics edited (3 edits each) for composed pairs."),
    ) -> None:
        """Write the default TRAIN-split mixture (retrieval, classification, region, composed, geo, vqa) as JSONL: RSICD train,
        mosaics of train images, chips of the spatial train split of the georeferenced scenes."""
        from geovec.paths import default_data_root
        from geovec.train.mixture import build_mixture

        root = data_root or default_data_root()
        if root is None:
            raise typer.BadParameter("no data root: pass --data-root or set GEOVEC_DATA_ROOT")
        manifest = build_mixture(root, out_dir, mosaics=mosaics, seed=seed, composed=composed)
        for task, path in manifest["files"].items():
            typer.echo(f"{task}: {path}")

    @train_app.command("cache-features")
    def cache_features(
        cache_dir: Path = typer.Argument(..., help="Feature cache folder (the config's feature_cache)."),
        data: List[Path] = typer.Option(..., "--data", help="JSONL files whose images to cache."),
        model: str = typer.Option("geovec-compact-untrained", help="Model whose frozen vision tower to use."),
    ) -> None:
        """Precompute frozen vision-tower features of every image the JSONL files use."""
        from geovec.train.data import read_jsonl
        from geovec.train.feature_cache import FeatureCache
        from geovec.train.trainer import load_base_model

        m = load_base_model(model)
        paths = set()
        for f in data:
            for ex in read_jsonl(f):
                for it in [ex.query, *ex.positives, *ex.negatives]:
                    if isinstance(it.get("image"), str):
                        paths.add(it["image"])
        n = FeatureCache(cache_dir, m).fill(sorted(paths))
        typer.echo(f"computed {n} of {len(paths)} feature maps in {cache_dir}")

    _register_dev_eval(train_app)

    @train_app.command("export")
    def export(
        source: Path = typer.Argument(..., help="A run's model/ folder or a checkpoint/ folder (trainer_state.pt)."),
        out_dir: Path = typer.Argument(..., help="Where to write config.json + model.safetensors."),
        name: str = typer.Option("geovec-compact", help="Model name written into config.json."),
        revision: Optional[str] = typer.Option(None, help="Revision written into config.json."),
        fp16: bool = typer.Option(False, help="Store the weights as float16 (half the size)."),
    ) -> None:
        """Export trained weights (trained parts only, safetensors) under a model name, e.g. into the package."""
        from geovec.train.export import export_model

        path = export_model(source, out_dir, name=name, revision=revision, fp16=fp16)
        typer.echo(f"wrote {path}")

    app.add_typer(train_app, name="train")


def _register_dev_eval(train_app: typer.Typer) -> None:
    @train_app.command("dev-eval")
    def dev_eval(
        model: str = typer.Option("geovec-compact", help="Model name or checkpoint directory."),
        data_root: Optional[Path] = typer.Option(None, help="../shared/data layout (default: $GEOVEC_DATA_ROOT or ../shared/data)."),
        work_dir: Path = typer.Option(Path("runs/dev"), help="Where the results (results/) and rendered dev mosaics go."),
        task: Optional[List[str]] = typer.Option(None, "--task", help="rsmeb-dev task or suite name (repeat, or comma-separated); default: the whole rsmeb-dev suite."),
        max_queries: int = typer.Option(0, help="Score a seeded subset of this many queries per task (0 = all)."),
        seed: int = typer.Option(0, help="Seed of the dev tasks' constructions and of the query subset."),
        feature_cache: Optional[Path] = typer.Option(None, help="Frozen vision feature cache folder (filled with the dev images)."),
        text_cache: Optional[Path] = typer.Option(None, help="File of pooled text states shared between models whose text path is frozen."),
        out: Optional[Path] = typer.Option(None, help="Write the scores as JSON here."),
    ) -> None:
        """Dev scores of a model: the rsmeb-dev tasks of ``geovec bench`` through its runner, with the training
        feature and text caches (main score and 95% interval per task, fractions)."""
        import json
        import time

        from geovec.models.registry import load_model
        from geovec.paths import default_data_root
        from geovec.train.dev_eval import DevEvaluator
        from geovec.train.feature_cache import FeatureCache
        from geovec.train.trainer import TextStateCache

        root = data_root or default_data_root()
        if root is None:
            raise typer.BadParameter("no data root: pass --data-root or set GEOVEC_DATA_ROOT")
        names = [n.strip() for t in (task or []) for n in t.split(",") if n.strip()]
        m = load_model(model)
        m.apply_trainable([])  # evaluation only: lets the text-state cache apply where the text path is frozen
        cache = FeatureCache(feature_cache, m) if feature_cache else None
        tc = None
        if text_cache and m.text_states_shareable:
            tc = TextStateCache(m, text_cache)
        ev = DevEvaluator(root, work_dir, cache, tasks=names or None, max_queries=max_queries, seed=seed,
                          embed_fn=tc.embed if tc is not None else None, log=lambda line: typer.echo(line, err=True))
        t = time.time()
        scores = ev(m)
        if tc is not None:
            tc.save()
        record = {"model": str(model), "revision": ev.last_revision, "eval_s": round(time.time() - t, 1),
                  "results": str(work_dir / "results"), "max_queries": max_queries or None, "seed": seed,
                  "not_run": [r["task_name"] for r in ev.records if r.get("status") != "ok"], **scores}
        typer.echo(json.dumps(record, indent=1))
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record, indent=1) + "\n")
