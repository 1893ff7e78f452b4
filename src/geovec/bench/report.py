"""Markdown tables from the per-task result JSONs: per task, per meta-task average, and across models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geovec.bench.tasks import META_TASKS, TASKS


def load_results(model_dir: str | Path) -> list[dict[str, Any]]:
    recs = []
    for p in sorted(Path(model_dir).glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        if "task_name" in r:
            recs.append(r)
    order = {name: i for i, name in enumerate(TASKS)}
    return sorted(recs, key=lambda r: order.get(r["task_name"], len(order)))


def main_score(rec: dict) -> float | None:
    if rec.get("status") != "ok":
        return None
    return rec["scores"][next(iter(rec["scores"]))][0]["main_score"]


def _scores(rec: dict) -> dict:
    return rec["scores"][next(iter(rec["scores"]))][0]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _extras(rec: dict) -> str:
    s = _scores(rec)
    bits = []
    if "hit@1" in s and rec["main_score_name"] == "mR":
        bits.append(f"R@1/5/10 {_pct(s['hit@1'])}/{_pct(s['hit@5'])}/{_pct(s['hit@10'])}")
    if "within_group" in s:
        w = s["within_group"]
        bits.append(f"within-group P@1 {_pct(w['p@1'])} (chance {_pct(w['chance_p@1'])})")
    if "median_error_km" in s:
        bits.append(f"median error {s['median_error_km']:.1f} km, within 25 km {_pct(s['within_25km'])}")
    if "p@1_by_label" in s and len(s["p@1_by_label"]) <= 8:
        bits.append(", ".join(f"{k} {_pct(v)}" for k, v in s["p@1_by_label"].items()))
    return "; ".join(bits)


def meta_task_averages(recs: list[dict]) -> dict[str, tuple[float, int, int]]:
    """meta-task -> (mean main score over tasks run, tasks run, tasks in total)."""
    out = {}
    for key in META_TASKS:
        group = [r for r in recs if r.get("meta_task") == key]
        if not group:
            continue
        run = [main_score(r) for r in group if main_score(r) is not None]
        out[key] = (sum(run) / len(run) if run else None, len(run), len(group))
    return out


def retrieval_mr(recs: list[dict]) -> dict[str, float]:
    """Dataset-level mR (mean of R@1/5/10 over both directions) where both directions ran."""
    by = {r["task_name"]: r for r in recs if r.get("status") == "ok"}
    out = {}
    for name, r in by.items():
        if name.endswith("-i2t") and name[:-4] + "-t2i" in by:
            out[name[:-4]] = (main_score(r) + main_score(by[name[:-4] + "-t2i"])) / 2
    return out


def summary_markdown(model_dir: str | Path) -> str:
    recs = load_results(model_dir)
    if not recs:
        return "no results\n"
    model, rev = recs[0]["model_name"], recs[0]["model_revision"]
    lines = [f"# RSMEB results: {model} ({rev})", "",
             "Scores in % (main metric of each task); chance = expected P@1 of a random ranking.", "",
             "| meta-task | task | dataset | split | metric | score | chance P@1 | queries | time (s) | details |",
             "|---|---|---|---|---|---:|---:|---:|---:|---|"]
    for r in recs:
        mt = META_TASKS.get(r["meta_task"], r["meta_task"])
        if r.get("status") == "ok":
            s = _scores(r)
            lines.append(f"| {mt} | {r['task_name']} | {r['dataset']} | {r['split']} | {r['main_score_name']} | "
                         f"{_pct(s['main_score'])} | {_pct(s.get('chance_p@1'))} | {r.get('n_queries', '')} | "
                         f"{r.get('evaluation_time', 0):.1f} | {_extras(r)} |")
        else:
            reason = r.get("reason", "").splitlines()[0] if r.get("reason") else ""
            lines.append(f"| {mt} | {r['task_name']} | {r['dataset']} | {r['split']} | {r['main_score_name']} | "
                         f"not run | | | | {reason} |")
    lines += ["", "| meta-task | average score | tasks run |", "|---|---:|---:|"]
    avgs = meta_task_averages(recs)
    for key, (avg, n_run, n_all) in avgs.items():
        lines.append(f"| {META_TASKS[key]} | {_pct(avg)} | {n_run}/{n_all} |")
    run_avgs = [a for a, _, _ in avgs.values() if a is not None]
    if run_avgs:
        lines.append(f"| **mean over meta-tasks run** | {_pct(sum(run_avgs) / len(run_avgs))} | "
                     f"{sum(1 for a in avgs.values() if a[0] is not None)}/{len(avgs)} |")
    mr = retrieval_mr(recs)
    if mr:
        lines += ["", "| retrieval dataset | mR (both directions) |", "|---|---:|"]
        lines += [f"| {k} | {_pct(v)} |" for k, v in mr.items()]
    return "\n".join(lines) + "\n"


def write_summary(model_dir: str | Path) -> Path:
    path = Path(model_dir) / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(model_dir))
    return path


def comparison_markdown(out_dir: str | Path) -> str:
    """One table, tasks x models, from every ``<out>/<model>/<revision>/`` folder."""
    dirs = sorted({p.parent for p in Path(out_dir).glob("*/*/*.json")})
    models = [(d, load_results(d)) for d in dirs]
    models = [(d, r) for d, r in models if r]
    if not models:
        return "no results\n"
    names = [f"{r[0]['model_name']} ({r[0]['model_revision']})" for _, r in models]
    tasks = list(dict.fromkeys(rec["task_name"] for _, rs in models for rec in rs))
    order = {name: i for i, name in enumerate(TASKS)}
    tasks.sort(key=lambda t: order.get(t, len(order)))
    lines = ["| task | metric | chance | " + " | ".join(names) + " |", "|---|---|---:|" + "---:|" * len(names)]
    for t in tasks:
        cells, metric, chance = [], "", None
        for _, rs in models:
            rec = next((x for x in rs if x["task_name"] == t), None)
            if rec is None:
                cells.append("")
                continue
            metric = rec["main_score_name"]
            if rec.get("status") == "ok":
                chance = _scores(rec).get("chance_p@1", chance)
            cells.append(_pct(main_score(rec)) if rec.get("status") == "ok" else "not run")
        lines.append(f"| {t} | {metric} | {_pct(chance)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
