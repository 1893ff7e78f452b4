"""Markdown tables from the per-task result JSONs: per task, per meta-task average, and across models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geovec.bench.metrics import QueryScores, mean_ci, paired_bootstrap, paired_bootstrap_mean
from geovec.bench.tasks import META_TASKS, TASKS


def load_query_scores(model_dir: str | Path, task_name: str) -> tuple[QueryScores, str] | None:
    """Per-query main-metric values of one task result (and its dataset revision), or None if absent."""
    p = Path(model_dir) / "per_query" / f"{task_name}.json"
    if not p.exists():
        return None
    d = json.loads(p.read_text())
    return QueryScores.from_json(d), d.get("dataset_revision", "")


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


def _ci(s: dict) -> str:
    ci = s.get("ci95")
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}" if ci else ""


def _extras(rec: dict) -> str:
    s = _scores(rec)
    bits = []
    if "i2t_hit@1" in s:
        for d in ("i2t", "t2i"):
            bits.append(f"{d} R@1/5/10 {_pct(s[f'{d}_hit@1'])}/{_pct(s[f'{d}_hit@5'])}/{_pct(s[f'{d}_hit@10'])}")
        if "mR_distinct" in s:
            bits.append(f"distinct-caption mR {_pct(s['mR_distinct'])}")
    elif "hit@1" in s and rec["main_score_name"] == "mR":
        bits.append(f"R@1/5/10 {_pct(s['hit@1'])}/{_pct(s['hit@5'])}/{_pct(s['hit@10'])}")
    if "within_group" in s:
        w = s["within_group"]
        bits.append(f"within-group P@1 {_pct(w['p@1'])} (chance {_pct(w['chance_p@1'])})")
    if "median_error_km" in s:
        within = "/".join(_pct(s[k]) for k in ("within_1km", "within_25km", "within_200km", "within_750km",
                                               "within_2500km") if k in s)
        bits.append(f"median error {s['median_error_km']:.1f} km, within 1/25/200/750/2500 km {within}")
    tmpl = rec.get("task_info", {}).get("template")
    if tmpl:
        bits.append(f"template '{tmpl}'")
    if "p@1_prompt_ensemble" in s:
        bits.append(f"{s['n_templates']}-prompt ensemble P@1 {_pct(s['p@1_prompt_ensemble'])}")
    if "p@1_by_label" in s and len(s["p@1_by_label"]) <= 8:
        bits.append(", ".join(f"{k} {_pct(v)}" for k, v in s["p@1_by_label"].items()))
    for key, by in s.items():  # facets (per class, per object size ...): P@1 (n)
        if key.startswith("p@1_by_") and key != "p@1_by_label" and isinstance(by, dict):
            facet = key[len("p@1_by_"):]
            n = s.get(f"n_by_{facet}", {})
            bits.append(f"by {facet}: " + ", ".join(f"{k} {_pct(v)} (n={n.get(k, '?')})" for k, v in by.items()))
    for key, d in s.items():  # paired parts: the same queries asked two ways
        if "_minus_" in key and isinstance(d, dict) and "delta" in d:
            b, a = key.split("_minus_")
            pa, pb = s["parts"][a], s["parts"][b]
            bits.append(f"{a} P@1 {_pct(pa['p@1'])}, {b} {_pct(pb['p@1'])}: {b} - {a} {100 * d['delta']:+.1f} "
                        f"(95% CI {100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f})")
            for part in (a, b):
                if "p@1_by_label" in s["parts"][part]:
                    bits.append(f"{part} by type: " + ", ".join(f"{k} {_pct(v)}"
                                                             for k, v in s["parts"][part]["p@1_by_label"].items()))
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


def summary_markdown(model_dir: str | Path) -> str:
    recs = load_results(model_dir)
    if not recs:
        return "no results\n"
    model, rev = recs[0]["model_name"], recs[0]["model_revision"]
    lines = [f"# RSMEB results: {model} ({rev})", "",
             "Scores in % (main metric of each task) with the 95% bootstrap interval over queries (seeded); n = "
             "queries scored; chance = expected P@1 of a random ranking; effective chance = among the candidates a "
             "query can really confuse (its own mosaic / base). Published anchors are other models on the official "
             "data unless noted: read the note before comparing.", "",
             "| meta-task | task | split | metric | score | 95% CI | n | chance P@1 | eff. chance | details | "
             "published anchors | note |",
             "|---|---|---|---|---:|---|---:|---:|---:|---|---|---|"]
    for r in recs:
        mt = META_TASKS.get(r["meta_task"], r["meta_task"])
        meta = r.get("task_metadata", {})
        ref = meta.get("reference", "")
        note = meta.get("reference_note", "")
        if r.get("max_queries"):
            note = (note + "; " if note else "") + f"subset of at most {r['max_queries']} queries per ranking"
        if r.get("status") == "ok":
            s = _scores(r)
            lines.append(f"| {mt} | {r['task_name']} | {r['split']} | {r['main_score_name']} | "
                         f"{_pct(s['main_score'])} | {_ci(s)} | {s.get('n_queries', r.get('n_queries', ''))} | "
                         f"{_pct(s.get('chance_p@1'))} | {_pct(s.get('effective_chance_p@1'))} | {_extras(r)} | "
                         f"{ref} | {note} |")
        else:
            reason = r.get("reason", "").splitlines()[0] if r.get("reason") else ""
            lines.append(f"| {mt} | {r['task_name']} | {r['split']} | {r['main_score_name']} | "
                         f"not run | | | | | {reason} | {ref} | |")
    protocols = {r["task_name"]: r.get("protocol") for r in recs if r.get("protocol")}
    if protocols:
        lines += ["", "Protocols:", ""]
        for proto in dict.fromkeys(protocols.values()):
            names = [t for t, p in protocols.items() if p == proto]
            lines.append(f"- {', '.join(names)}: {proto}")
    lines += ["", "| meta-task | average score | tasks run |", "|---|---:|---:|"]
    avgs = meta_task_averages(recs)
    for key, (avg, n_run, n_all) in avgs.items():
        lines.append(f"| {META_TASKS[key]} | {_pct(avg)} | {n_run}/{n_all} |")
    run_avgs = [a for a, _, _ in avgs.values() if a is not None]
    if run_avgs:
        lines.append(f"| **mean over meta-tasks run** | {_pct(sum(run_avgs) / len(run_avgs))} | "
                     f"{sum(1 for a in avgs.values() if a[0] is not None)}/{len(avgs)} |")
    outside = outside_rsicd(model_dir)
    if outside:
        lines += ["", f"**outside RSICD** (mean of the main scores of {', '.join(outside['tasks'])}): "
                      f"{_pct(outside['score'])} (95% CI {100 * outside['ci95'][0]:.1f}-{100 * outside['ci95'][1]:.1f}; "
                      "each task's queries resampled, the mean taken per draw)"]
    return "\n".join(lines) + "\n"


def _outside_scores(model_dir: str | Path) -> tuple[list[str], list[QueryScores], list[str]] | None:
    from geovec.bench.outside import OUTSIDE_RSICD

    loaded = [(t, load_query_scores(model_dir, t)) for t in OUTSIDE_RSICD]
    if any(q is None for _, q in loaded):
        return None  # the line needs every task: a mean over some of them is another figure
    return [t for t, _ in loaded], [q[0] for _, q in loaded], [q[1] for _, q in loaded]


def outside_rsicd(model_dir: str | Path, n_boot: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """The "outside RSICD" summary: the mean of the main scores of :data:`geovec.bench.outside.OUTSIDE_RSICD`
    with a bootstrap interval (None unless every one of those tasks has a result)."""
    got = _outside_scores(model_dir)
    if got is None:
        return None
    tasks, qss, _ = got
    score, lo, hi = mean_ci(qss, n_boot=n_boot, seed=seed)
    return {"tasks": tasks, "score": score, "ci95": [lo, hi], "n_queries": [q.n for q in qss]}


def write_summary(model_dir: str | Path) -> Path:
    path = Path(model_dir) / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(model_dir))
    return path


def _natural(path: Path) -> list:
    """Sort key: digit runs compare as numbers (revision r10 after r9, not before r6)."""
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def model_dirs(out_dir: str | Path) -> list[Path]:
    return sorted({p.parent for p in Path(out_dir).glob("*/*/*.json") if p.name != "model_meta.json"}, key=_natural)


def comparison_markdown(out_dir: str | Path) -> str:
    """One table, tasks x models (score and 95% interval), from every ``<out>/<model>/<revision>/`` folder."""
    models = [(d, load_results(d)) for d in model_dirs(out_dir)]
    models = [(d, r) for d, r in models if r]
    if not models:
        return "no results\n"
    names = [f"{r[0]['model_name']} ({r[0]['model_revision']})" for _, r in models]
    tasks = list(dict.fromkeys(rec["task_name"] for _, rs in models for rec in rs))
    order = {name: i for i, name in enumerate(TASKS)}
    tasks.sort(key=lambda t: order.get(t, len(order)))
    lines = ["Scores in % with 95% intervals; use `geovec bench --compare A B` for paired tests.", "",
             "| task | metric | chance | " + " | ".join(names) + " |", "|---|---|---:|" + "---:|" * len(names)]
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
                ci = _ci(_scores(rec))
                cells.append(_pct(main_score(rec)) + (f" ({ci})" if ci else ""))
            else:
                cells.append("not run")
        lines.append(f"| {t} | {metric} | {_pct(chance)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def resolve_model_dir(out_dir: str | Path, name: str) -> Path:
    """A results folder from a path (``<out>/<model>/<revision>``) or a model name / ``model/revision`` under
    ``out_dir`` (the newest revision when only the model is given)."""
    p = Path(name)
    if p.is_dir() and any(p.glob("*.json")):
        return p
    cands = [d for d in model_dirs(out_dir) if f"{d.parent.name}/{d.name}" == name or d.parent.name == name]
    if not cands:
        known = ", ".join(f"{d.parent.name}/{d.name}" for d in model_dirs(out_dir)) or "none"
        raise ValueError(f"no results for {name!r} under {out_dir} (known: {known})")
    return max(cands, key=lambda d: max(f.stat().st_mtime for f in d.glob("*.json")))


def paired_comparison(dir_a: str | Path, dir_b: str | Path, n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Per task present in both runs: B - A with a paired bootstrap interval over the same queries."""
    a_recs = {r["task_name"]: r for r in load_results(dir_a) if r.get("status") == "ok"}
    b_recs = {r["task_name"]: r for r in load_results(dir_b) if r.get("status") == "ok"}
    out = []
    for t in [t for t in a_recs if t in b_recs]:
        qa, qb = load_query_scores(dir_a, t), load_query_scores(dir_b, t)
        row = {"task": t, "metric": a_recs[t]["main_score_name"], "a": main_score(a_recs[t]), "b": main_score(b_recs[t])}
        if qa is None or qb is None:
            row["verdict"] = "no per-query scores (rerun with this geovec version)"
        elif qa[1] != qb[1] or qa[0].n != qb[0].n:
            row["verdict"] = "different queries (dataset revision differs): not comparable"
        else:
            row.update(paired_bootstrap(qa[0], qb[0], n_boot=n_boot, seed=seed))
        out.append(row)
    oa, ob = _outside_scores(dir_a), _outside_scores(dir_b)
    if oa is not None and ob is not None:
        row = {"task": "outside RSICD (mean)", "metric": "mean", "a": float(sum(q.score() for q in oa[1]) / len(oa[1])),
               "b": float(sum(q.score() for q in ob[1]) / len(ob[1]))}
        if oa[2] != ob[2] or any(x.n != y.n for x, y in zip(oa[1], ob[1])):
            row["verdict"] = "different queries (dataset revision differs): not comparable"
        else:
            row.update(paired_bootstrap_mean(oa[1], ob[1], n_boot=n_boot, seed=seed))
        out.append(row)
    return out


def paired_markdown(dir_a: str | Path, dir_b: str | Path) -> str:
    rows = paired_comparison(dir_a, dir_b)
    ra, rb = load_results(dir_a), load_results(dir_b)
    na = f"{ra[0]['model_name']} ({ra[0]['model_revision']})" if ra else str(dir_a)
    nb = f"{rb[0]['model_name']} ({rb[0]['model_revision']})" if rb else str(dir_b)
    lines = [f"A = {na}, B = {nb}. Delta = B - A in points with a paired bootstrap 95% interval (same queries "
             "resampled for both); inside the interval is 'no change'.", "",
             "| task | metric | A | B | delta | 95% CI of delta | p | verdict |", "|---|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        if "delta" in r:
            lines.append(f"| {r['task']} | {r['metric']} | {_pct(r['a'])} | {_pct(r['b'])} | {100 * r['delta']:+.2f} | "
                         f"{100 * r['ci95'][0]:+.1f} to {100 * r['ci95'][1]:+.1f} | {r['p_value']:.3f} | {r['verdict']} |")
        else:
            lines.append(f"| {r['task']} | {r['metric']} | {_pct(r['a'])} | {_pct(r['b'])} | | | | {r['verdict']} |")
    return "\n".join(lines) + "\n"
