"""Training curves: loss (and temperature) and dev scores over steps, from a run's ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

# rsmeb-dev main scores (fractions, with task/ci_low and task/ci_high) as DevEvaluator logs them; the keys of
# runs logged before the dev evaluation became the benchmark's (percentages) are still drawn
DEV_KEYS = ("dev-RSICD-i2t", "dev-RSICD-t2i", "dev-RSICD-retrieval", "dev-RSICD-scene", "dev-NWPU-RESISC12-scene",
            "dev-RSICD-vqa", "dev-mosaic-region-caption", "dev-mosaic-referring", "dev-mosaic-box-class",
            "dev-mosaic-composed", "dev-geo-image-location")
LEGACY_DEV_KEYS = ("rsicd_mR", "rsicd_cls_P@1", "region_caption_P@1", "refexp_within_P@1", "geo_img2loc_P@1")


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


def plot_run(metrics: str | Path, out_png: str | Path, title: str = "geovec-compact training",
             baseline: dict | None = None) -> Path:
    """Two panels: training loss per step; dev scores (%) at each evaluation (shaded: their 95% interval), with
    the untrained baseline's scores (same keys as the eval records) as dashed lines when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    # a resumed run repeats the steps after its last checkpoint: keep the latest record of each step
    train = sorted({r["step"]: r for r in rows if r.get("kind") == "train"}.values(), key=lambda r: r["step"])
    evals = sorted({r["step"]: r for r in rows if r.get("kind") == "eval"}.values(), key=lambda r: r["step"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1, label="InfoNCE loss (symmetric)")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax1.set_title("training loss")
    ax1.grid(alpha=0.3)
    keys = [k for k in DEV_KEYS + LEGACY_DEV_KEYS if any(k in e for e in evals)]
    for i, key in enumerate(keys):
        colour = f"C{i}"
        scale = 1.0 if key in LEGACY_DEV_KEYS else 100.0
        pts = [e for e in evals if key in e]
        steps = [e["step"] for e in pts]
        ax2.plot(steps, [scale * e[key] for e in pts], "o-", color=colour, label=key)
        band = [e for e in pts if f"{key}/ci_low" in e and f"{key}/ci_high" in e]
        if band:
            ax2.fill_between([e["step"] for e in band], [scale * e[f"{key}/ci_low"] for e in band],
                             [scale * e[f"{key}/ci_high"] for e in band], color=colour, alpha=0.15, lw=0)
        if baseline and key in baseline:
            ax2.axhline(scale * baseline[key], color=colour, ls="--", lw=0.8)
    ax2.set_xlabel("step")
    ax2.set_ylabel("score (%)")
    ax2.set_title("dev scores (dashed: untrained baseline)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
