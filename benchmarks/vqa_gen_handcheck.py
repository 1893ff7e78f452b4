"""Draw the hand-check sample of the derived VQA pairs of RSICD val (``dev-RSICD-vqa``) and print it for judging.

    python benchmarks/vqa_gen_handcheck.py            # the 100 pairs of benchmarks/results/vqa_gen_handcheck.json
    python benchmarks/vqa_gen_handcheck.py --seed 3   # another sample

Stratified by question type (presence 40, count 20, comp 15, rural_urban 10, scene 15), drawn with
``numpy.random.default_rng(seed)`` from the pairs ``geovec.data.vqa_gen.rsicd_pairs(<rsicd>, "val", seed=0)``
builds. Each pair is printed with its rule and the image's distinct captions; the verdicts in the results file
were given by reading those captions and the class (not the images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geovec.data import RSICDScenes
from geovec.data.vqa_gen import rsicd_pairs
from geovec.paths import default_data_root

PLAN = {"presence": 40, "count": 20, "comp": 15, "rural_urban": 10, "scene": 15}


def sample(rsicd: Path, seed: int) -> list[dict]:
    captions = {Path(s["image"]).name: s["captions"] for s in RSICDScenes(rsicd, "val").samples}
    pairs = rsicd_pairs(rsicd, "val", seed=0)
    rng = np.random.default_rng(seed)
    rows = []
    for qtype, k in PLAN.items():
        idx = [i for i, p in enumerate(pairs) if p.type == qtype]
        for j in sorted(rng.choice(len(idx), k, replace=False)):
            p = pairs[idx[j]]
            name = Path(p.image).name
            rows.append({"image": name, "class": p.class_name, "type": qtype, "question": p.question,
                         "answer": p.answer, "rule": p.rule, "captions": list(dict.fromkeys(captions[name]))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args()
    root = args.data_root or default_data_root()
    rows = sample(Path(root) / "rsicd", args.seed)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return
    for n, r in enumerate(rows):
        print(f"#{n} [{r['type']}] {r['image']} ({r['class']}) Q: {r['question']} A: {r['answer']}  | {r['rule']}")
        for c in r["captions"]:
            print("     -", c)


if __name__ == "__main__":
    main()
