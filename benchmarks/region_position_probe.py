"""Do a model's box embeddings know where the box is? A linear probe on the VHR-10 dev objects.

    python benchmarks/region_position_probe.py --model geovec-compact

Embeds every (image, box) candidate of ``dev-VHR10-referring`` as the benchmark does (document side, region task)
and fits a ridge regression from the embedding (and from each half of a dual-path model) to the box centre (x and
y as fractions of the image side) and to sqrt(box area / image area), cross-validated over 5 folds of whole images.
R^2 near 0 means the embedding carries no linear trace of the position: no query can then rank "the leftmost
<class>" above the others by a dot product. Writes ``--out`` (default benchmarks/results/region_position_probe.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("GEOVEC_SRC", str(ROOT / "src")))

import numpy as np  # noqa: E402

import geovec  # noqa: E402
from geovec.paths import cache_dir, default_data_root  # noqa: E402


def cv_r2(X: np.ndarray, y: np.ndarray, folds: np.ndarray, lam: float) -> float:
    """Cross-validated R^2 of a ridge regression (bias unpenalised) over the given fold labels."""
    pred = np.zeros_like(y)
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        mu, ym = X[tr].mean(0), y[tr].mean()
        A = X[tr] - mu
        w = np.linalg.solve(A.T @ A + lam * np.eye(X.shape[1]), A.T @ (y[tr] - ym))
        pred[te] = (X[te] - mu) @ w + ym
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="geovec-compact")
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "region_position_probe.json")
    args = ap.parse_args(argv)

    from PIL import Image

    import geovec.bench.outside  # noqa: F401  (registers the task)
    from geovec.bench.encoders import BenchEncoder
    from geovec.bench.task_data import BuildContext
    from geovec.bench.tasks import get_task

    spec = get_task("dev-VHR10-referring")
    data = spec.build(BuildContext(args.data_root, cache_dir(), 0))  # as `geovec bench` does: never beside the data
    model = geovec.load_model(args.model, lazy=False)
    enc = BenchEncoder(model)
    E = enc.encode(enc.instructed(data.candidates, spec.candidate_kind, "document", spec.candidate_instruction))
    targets = {"centre x": [], "centre y": [], "sqrt relative area": []}
    images = []
    for c in data.candidates:
        with Image.open(c["image"]) as im:
            w, h = im.size
        x1, y1, x2, y2 = c["box"]
        targets["centre x"].append((x1 + x2) / 2 / w)
        targets["centre y"].append((y1 + y2) / 2 / h)
        targets["sqrt relative area"].append(((x2 - x1) * (y2 - y1) / (w * h)) ** 0.5)
        images.append(str(c["image"]))
    order = np.random.default_rng(0).permutation(sorted(set(images)))
    fold_of = {im: i % 5 for i, im in enumerate(order)}
    folds = np.array([fold_of[im] for im in images])
    parts = {"embedding": E}
    if getattr(model.config, "architecture", None) == "dual-path":
        half = E.shape[1] // 2
        parts.update({"global half": E[:, :half], "encoder half": E[:, half:]})
    scores = {p: {t: round(cv_r2(X.astype(np.float64), np.array(v), folds, args.ridge), 3) for t, v in targets.items()}
              for p, X in parts.items()}
    record = {"model": f"{model.config.name} {model.revision}", "task": spec.name, "n_boxes": len(E),
              "n_images": len(order), "folds": "5, by whole image", "ridge": args.ridge,
              "command": "python benchmarks/region_position_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cv_r2": scores}
    for p, s in scores.items():
        print(f"{p:13s} " + "  ".join(f"{t} R2 {v:+.3f}" for t, v in s.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
