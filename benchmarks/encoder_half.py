"""Train the dual-path model's encoder half alone, as r9-r20 were trained: write the shipped model's encoder half as a
single-encoder checkpoint (a training config's ``base_model``), and put a trained encoder half back beside the
shipped global path.

    python benchmarks/encoder_half.py split /work/runs/i25/r20-encoder-half
    geovec train --config configs/train/runs/r24-encoder-only.yaml      # base_model: /work/runs/i25/r20-encoder-half
    python benchmarks/encoder_half.py assemble /work/runs/i25/r24enc/model /work/runs/i25/r24model r24-2026-12-05

``assemble`` checks that the global half of the result embeds a few items exactly as the shipped model does.
``soup`` averages encoder halves in weight space (a weighted mean of every tensor, as r12 was made, WiSE-FT style):

    python benchmarks/encoder_half.py soup /work/runs/i25/soup /work/runs/i25/r20-encoder-half:0.5 \
        /work/runs/i25/r24enc/model:0.25 /work/runs/i25/r24benc/model:0.25
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import geovec

# one item per kind the global path reads (text, a location, text and location together)
PROBE_ITEMS = [{"text": "storage tanks beside a harbour"}, {"lat": 52.1, "lon": 5.1},
               {"text": "a river", "lat": 51.4, "lon": 4.5}]


def split(args) -> None:
    model = geovec.load_model(args.model, backend="torch")
    out = model.save_encoder_half(args.out, revision=args.revision)
    print(f"saved the encoder half of {model.config.name} {model.revision} to {out}")


def assemble(args) -> None:
    model = geovec.load_model(args.model, backend="torch")
    before = model.encode(PROBE_ITEMS)
    model.load_encoder_half(args.encoder)
    after = model.encode(PROBE_ITEMS)
    half = model.config.embed_dim
    moved = float(np.abs(after[:, :half] - before[:, :half]).max())
    if moved > 1e-5:
        sys.exit(f"the global half moved by {moved:.2g}: {args.encoder} is not an encoder half of this model")
    model.config.revision = args.revision
    model.save_pretrained(args.out)
    print(f"saved {model.config.name} {args.revision} (encoder half from {args.encoder}, global path of {args.model}; "
          f"encoder half moved by {float(np.abs(after[:, half:] - before[:, half:]).max()):.3g}) to {args.out}")


def soup(args) -> None:
    import shutil

    from safetensors.numpy import load_file, save_file

    parts = [(Path(p.rsplit(":", 1)[0]), float(p.rsplit(":", 1)[1])) for p in args.parts]
    total = sum(w for _, w in parts)
    if abs(total - 1.0) > 1e-6:
        sys.exit(f"the weights sum to {total}, not 1")
    states = [(load_file(str(d / "model.safetensors")), w) for d, w in parts]
    names = set(states[0][0])
    if any(set(st) != names for st, _ in states):
        sys.exit("the checkpoints do not hold the same tensors")
    mixed = {n: np.asarray(sum(w * st[n].astype(np.float64) for st, w in states), dtype=states[0][0][n].dtype)
             for n in names}
    args.out.mkdir(parents=True, exist_ok=True)
    for f in parts[0][0].iterdir():  # config and sentence-transformers files of the first
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, args.out / f.name)
    save_file(mixed, str(args.out / "model.safetensors"))
    print(f"saved the mean of {', '.join(f'{d} x {w}' for d, w in parts)} to {args.out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="write a dual-path model's encoder half as a single-encoder checkpoint")
    s.add_argument("out", type=Path)
    s.add_argument("--model", default="geovec-compact")
    s.add_argument("--revision", default=None, help="the checkpoint's revision (default: the model's)")
    s.set_defaults(run=split)
    a = sub.add_parser("assemble", help="a dual-path model with its encoder half from a checkpoint")
    a.add_argument("encoder", type=Path, help="a single-encoder checkpoint folder (a training run's model/)")
    a.add_argument("out", type=Path)
    a.add_argument("revision")
    a.add_argument("--model", default="geovec-compact", help="the dual-path model whose global path is kept")
    a.set_defaults(run=assemble)
    m = sub.add_parser("soup", help="a weighted mean of encoder-half checkpoints (same tensors), in weight space")
    m.add_argument("out", type=Path)
    m.add_argument("parts", nargs="+", help="FOLDER:WEIGHT, weights summing to 1")
    m.set_defaults(run=soup)
    args = ap.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
