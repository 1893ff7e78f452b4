"""``geovec bench``: run RSMEB suites or single tasks for a model and write results + a markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import format_option


def bench(
    suite: Optional[str] = typer.Option(None, "--suite", help="rsmeb | rsmeb-dev"),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="comma-separated task names (instead of --suite)"),
    model: str = typer.Option("geovec-compact", "--model",
                              help="geovec model name or checkpoint dir; 'chance'; 'geovec-compact-untrained' "
                                   "(frozen towers); or open_clip:<arch>:<pretrained>"),
    data_root: Optional[Path] = typer.Option(None, "--data-root",
                                             help="datasets folder (default $GEOVEC_DATA_ROOT, else ../shared/data)"),
    out: Path = typer.Option(Path("results/rsmeb"), "--out", help="results folder (<out>/<model>/<revision>/<task>.json)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="embedding + built-task cache (default $GEOVEC_CACHE or ~/.cache/geovec)"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    seed: int = typer.Option(0, "--seed", help="seed of constructed tasks (mosaics); keep 0 for comparable numbers"),
    overwrite: bool = typer.Option(False, "--overwrite", help="recompute tasks that already have a result"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the embedding cache"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads"),
    list_tasks: bool = typer.Option(False, "--list", help="list the tasks of the suite(s) and exit"),
    compare: bool = typer.Option(False, "--compare",
                                 help="with no RUNS: a tasks x models table of everything under --out; with two RUNS "
                                      "A B: B - A per task with paired bootstrap intervals; then exit"),
    max_queries: int = typer.Option(0, "--max-queries", min=0,
                                    help="score a seeded subset of at most this many queries per ranking (quick look)"),
    prompt_ensemble: bool = typer.Option(False, "--prompt-ensemble",
                                         help="classification extra: also score the mean over RS-TransCLIP's prompts"),
    runs: Optional[list[str]] = typer.Argument(None, help="with --compare: two result folders or model\\[/revision] names under --out"),
    fmt: str = format_option(),
) -> None:
    """Benchmark an embedding model on RSMEB (one JSON per task + summary.md).

    --format json prints one JSON document on stdout (the task list, the comparison, or each task's main score),
    the progress lines go to stderr."""
    import json
    from geovec.bench.tasks import SUITES, get_task, tasks_in
    from geovec.paths import default_data_root

    if runs and not compare:
        raise typer.BadParameter("positional RUNS are only used with --compare")
    if compare:
        from geovec.bench.report import comparison_markdown, paired_markdown, resolve_model_dir

        if runs:
            if len(runs) != 2:
                raise typer.BadParameter("--compare takes two runs: A B")
            try:
                a, b = (resolve_model_dir(out, r) for r in runs)
            except ValueError as e:
                raise typer.BadParameter(str(e)) from None
            if fmt == "json":
                from geovec.bench.report import paired_comparison

                typer.echo(json.dumps({"a": str(a), "b": str(b), "tasks": paired_comparison(a, b)}, indent=2,
                                      default=str))
            else:
                typer.echo(paired_markdown(a, b))
            return
        text = comparison_markdown(out)
        (Path(out) / "comparison.md").write_text(text)
        if fmt == "json":
            from geovec.bench.report import load_results, main_score, model_dirs

            typer.echo(json.dumps({str(d.relative_to(out)): {r["task_name"]: main_score(r) for r in load_results(d)}
                                   for d in model_dirs(out)}, indent=2))
        else:
            typer.echo(text)
        return
    if list_tasks:
        listed = {s: [t.metadata() for t in tasks_in(s)] for s in ([suite] if suite else SUITES)}
        if fmt == "json":
            typer.echo(json.dumps(listed, indent=2, default=list))
            return
        for s in ([suite] if suite else SUITES):
            typer.echo(f"{s}:")
            for t in tasks_in(s):
                typer.echo(f"  {t.name:32s} {t.meta_task:15s} {t.dataset} [{t.split}] "
                           f"{'+'.join(t.query_modalities)} -> {'+'.join(t.candidate_modalities)} ({t.main_score})")
        return
    if bool(suite) == bool(tasks):
        raise typer.BadParameter("give exactly one of --suite or --tasks")
    try:
        specs = tasks_in(suite) if suite else [get_task(t.strip()) for t in tasks.split(",") if t.strip()]
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    root = data_root or default_data_root()
    if root is None:
        raise typer.BadParameter("no --data-root given, $GEOVEC_DATA_ROOT unset and no ../shared/data found")

    from geovec.paths import cache_dir as default_cache_dir
    from geovec.bench.encoders import load_encoder
    from geovec.bench.runner import RunConfig, result_dir, run_benchmark

    encoder = load_encoder(model, batch_size=batch_size, num_threads=threads)
    cfg = RunConfig(data_root=root, out_dir=out, cache_dir=cache_dir or default_cache_dir(), seed=seed,
                    overwrite=overwrite, use_cache=not no_cache, max_queries=max_queries,
                    prompt_ensemble=prompt_ensemble)
    log = (lambda line: typer.echo(line, err=True)) if fmt == "json" else typer.echo
    records = run_benchmark(specs, encoder, cfg, log=log)
    if fmt == "json":
        rows = []
        for r in records:
            sc = r["scores"][next(iter(r["scores"]))][0] if r.get("status") == "ok" else {}
            rows.append({"task": r["task_name"], "status": r.get("status"), "main_score_name": r.get("main_score_name"),
                         "main_score": sc.get("main_score"), "ci95": sc.get("ci95"), "n_queries": sc.get("n_queries"),
                         "reason": r.get("reason")})
        typer.echo(json.dumps({"results": str(result_dir(out, encoder)), "tasks": rows}, indent=2))
        return
    typer.echo(f"results: {result_dir(out, encoder)} (summary.md)")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
