"""User docs: the model card's Hugging Face front matter matches the shipped revision and the package, its
numbers match the committed result files, and no internal notes are left in README.md or docs/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

yaml = pytest.importorskip("yaml")

CARD = REPO / "docs" / "model-card.md"
RESULTS = REPO / "benchmarks" / "results" / "rsmeb-dev"
COLUMNS = {"probe (frozen towers)": "geovec-probe/wfb8b64a4cbf4", "r20": "geovec-compact/r20-2026-12-01",
           "r26 (previous default)": "geovec-compact/r26-2026-12-05"}


def _front_matter() -> dict:
    text = CARD.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("\n---\n", 1)[0][4:])


def _bundled_config() -> dict:
    return json.loads((REPO / "src" / "geovec" / "models" / "weights" / "geovec-compact" / "config.json").read_text())


def _main_scores(folder) -> dict[str, tuple[float, list[float]]]:
    out = {}
    for f in sorted((RESULTS / folder).glob("*.json")):
        if f.name == "model_meta.json":
            continue
        rec = json.loads(f.read_text())
        s = rec["scores"][next(iter(rec["scores"]))][0]
        out[rec["task_name"]] = (100 * s["main_score"], [100 * x for x in s["ci95"]])
    return out


def test_model_card_front_matter_fits_the_shipped_revision():
    fm = _front_matter()
    cfg = _bundled_config()
    pyproject = (REPO / "pyproject.toml").read_text()
    # the trained weights are Apache-2.0; the package also ships GeoCLIP's MIT location encoder, named in the card
    assert fm["license"] == "apache-2.0" and 'license = "Apache-2.0 AND MIT"' in pyproject
    assert "MIT License" in CARD.read_text() and "geoclip-location-encoder/LICENSE" in CARD.read_text()
    assert fm["pipeline_tag"] == "feature-extraction" and fm["library_name"] == "sentence-transformers"
    assert {"geovec", "remote-sensing", "multimodal"} <= set(fm["tags"])
    assert fm["geovec_revision"] == cfg["revision"] and f"(revision `{cfg['revision']}`)" in CARD.read_text()
    shipped = _main_scores(f"geovec-compact/{cfg['revision']}")
    results = fm["model-index"][0]["results"]
    assert {r["task"]["name"] for r in results} == set(shipped)
    for r in results:
        assert r["metrics"][0]["value"] == pytest.approx(round(shipped[r["task"]["name"]][0], 1))


def test_model_card_table_matches_the_result_files():
    cfg = _bundled_config()
    main_table = CARD.read_text().split("## Outside RSICD")[0]  # the rsmeb-dev table; the outside one has its test
    lines = [line for line in main_table.splitlines() if line.startswith("| dev-")]
    header = next(line for line in CARD.read_text().splitlines() if line.startswith("| task |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    shipped_col = next(i for i, c in enumerate(cols) if c.endswith("(shipped)**"))
    assert cols[shipped_col] == f"**{cfg['revision'].split('-')[0]} (shipped)**"
    folders = {**{cols.index(k): v for k, v in COLUMNS.items()},
               shipped_col: f"geovec-compact/{cfg['revision']}"}
    scores = {i: _main_scores(folder) for i, folder in folders.items()}
    assert len(lines) == 11 and len(scores[shipped_col]) == 17  # 11 rsmeb-dev tasks + 6 outside RSICD
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = cells[0].split(" (")[0]
        for i, by_task in scores.items():
            value, ci = by_task[task]
            m = re.match(r"\**([\d.]+)\**\s*\(([\d.]+)-([\d.]+)\)", cells[i])
            assert m, (task, cells[i])
            tol = 0.05 + 1e-9  # one decimal of the file's value
            assert float(m.group(1)) == pytest.approx(value, abs=tol), (task, cols[i])
            assert [float(m.group(2)), float(m.group(3))] == pytest.approx(ci, abs=tol), (task, cols[i])
    assert "**768-d**" in CARD.read_text()


def test_outside_rsicd_table_matches_the_result_files():
    from geovec.bench.outside import OUTSIDE_RSICD

    cfg = _bundled_config()
    section = CARD.read_text().split("## Outside RSICD")[1].split("\n## ")[0]
    header = next(line for line in section.splitlines() if line.startswith("| task |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    folders = sorted(d.name for d in (RESULTS / "geovec-compact").iterdir())
    runs = {}
    for i, c in enumerate(cols):  # "**r20 (shipped)**" -> the bundled revision, "r22 (ablation)" -> r22-<date>
        if c.endswith("(shipped)**"):
            runs[i] = f"geovec-compact/{cfg['revision']}"
        elif re.fullmatch(r"r\d+ \(.*\)", c):
            runs[i] = "geovec-compact/" + next(f for f in folders if f.split("-")[0] == c.split()[0] and "+" not in f)
    assert len(runs) >= 1 and f"geovec-compact/{cfg['revision']}" in runs.values(), cols
    rows = {line.split("|")[1].strip().split(" (")[0]: [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| dev-")}
    assert set(rows) == set(OUTSIDE_RSICD)
    for i, folder in runs.items():
        scores = _main_scores(folder)
        for task, cells in rows.items():
            value, ci = scores[task]
            m = re.match(r"\**([\d.]+)\**\s*\(([\d.]+)-([\d.]+)\)", cells[i])
            assert m, (task, cells[i])
            assert float(m.group(1)) == pytest.approx(value, abs=0.05 + 1e-9), (task, folder)
            assert [float(m.group(2)), float(m.group(3))] == pytest.approx(ci, abs=0.05 + 1e-9), (task, folder)


@pytest.mark.parametrize("pattern", [r"\bthis machine\b", r"\bthe lead\b", r"should add", r"\bTODO\b",
                                     r"other engineers", r"\bour machines\b"])
def test_no_internal_notes_in_user_docs(pattern):
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        found = re.search(pattern, doc.read_text(), flags=re.IGNORECASE)
        assert not found, f"{doc.name}: {found.group(0)!r}"


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_and_images_point_at_files_in_the_repo(doc):
    """Markdown links and images to repository files (run curves and data under benchmarks/results, the
    screenshots in docs/) resolve; web links and in-page anchors are not checked here."""
    targets = re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in local if t and not (doc.parent / t).exists()]
    assert not missing, f"{doc.name}: {missing}"
    # a link out of the repository works only on the machine that has that folder (not in a clone, not on the web)
    outside = [t for t in local if t and not (doc.parent / t).resolve().is_relative_to(REPO.resolve())]
    assert not outside, f"{doc.name} links outside the repository: {outside}"


def test_docs_hold_only_what_their_pages_show():
    """Every file in docs/ besides the pages is an image a page shows; run records live in benchmarks/results."""
    shown = {Path(t).name for doc in DOCS for t in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", doc.read_text())}
    extra = [p.name for p in (REPO / "docs").iterdir() if p.suffix != ".md" and p.name not in shown]
    assert not extra, f"docs/ holds files no page shows: {extra}"
