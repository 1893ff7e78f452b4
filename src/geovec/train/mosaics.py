"""Region pairs from mosaics built by :mod:`geovec.data.mosaic`, the builder of the benchmark's dev mosaics.

Each placed image is a :class:`~geovec.data.mosaic.Region` with a pixel box (xyxy on the canvas), its captions,
its class and prompt name, as in the rsmeb-dev region tasks. Build training mosaics from TRAIN images only
(``RSICDScenes(root, "train").samples``); the dev tasks build theirs from ``val``. Composed-retrieval pairs
(:func:`composed_examples`) are mosaic edits made by the dev task's own edit builder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from geovec.data.mosaic import COMPOSED_TEMPLATE, Mosaic, build_mosaics, composed_edits
from geovec.train.converters import class_prompts
from geovec.train.data import Example


def write_mosaics(mosaics: Sequence[Mosaic], out_dir: str | Path) -> list[str]:
    """Render each mosaic to ``out_dir/<id>.png`` (lossless) and write ``mosaics.json`` (layouts, sources and
    paths); returns the PNG paths in mosaic order."""
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(m.save(out_dir / f"{m.id}.png")) for m in mosaics]
    (out_dir / "mosaics.json").write_text(json.dumps(
        [{"path": p, **m.to_dict()} for m, p in zip(mosaics, paths)], indent=1))
    return paths


def train_mosaics(samples: Sequence[dict[str, Any]], out_dir: str | Path, count: int, seed: int = 0,
                  **options) -> tuple[list[Mosaic], list[str]]:
    """``count`` mosaics of ``samples`` (data-layer sample dicts: ``image``, ``captions``, ``class_name``,
    ``prompt_name``) by :func:`geovec.data.mosaic.build_mosaics` (``options`` are its keyword arguments;
    its defaults are the dev suite's canvas and box sizes), rendered under ``out_dir``."""
    if count <= 0:
        return [], []
    mosaics = build_mosaics(samples, count, seed=seed, **{"id_prefix": "train", **options})
    return mosaics, write_mosaics(mosaics, out_dir)


def region_examples(mosaics: Sequence[Mosaic], paths: Sequence[str | Path], with_class: bool = True) -> Iterator[Example]:
    """Per region of each mosaic (rendered at ``paths[i]``): (mosaic + box) -> its captions (the mosaic's other
    regions' captions as hard negatives); (mosaic + caption) -> (mosaic + box) (the other boxes as hard
    negatives); optionally (mosaic + box) -> class name (:func:`class_prompts`)."""
    if len(mosaics) != len(paths):
        raise ValueError(f"{len(mosaics)} mosaics but {len(paths)} image paths")
    for mo, path in zip(mosaics, paths):
        path = str(path)
        for r, reg in enumerate(mo.regions):
            caps = [c for c in reg.captions if c.strip(" .")]
            others = [o for o in mo.regions if o is not reg]
            group = f"{path}#{r}"
            q = {"image": path, "box": list(reg.box)}
            if caps:
                yield Example("region", q, [{"text": c} for c in caps],
                              [{"text": o.captions[0]} for o in others if o.captions and o.captions[0].strip(" .")],
                              group=group)
                for c in caps:
                    yield Example("region", {"image": path, "text": c}, [dict(q)],
                                  [{"image": path, "box": list(o.box)} for o in others], group=group)
            if with_class and reg.class_name:
                yield Example("region", dict(q), [{"text": t} for t in class_prompts(reg.class_name, reg.prompt_name)],
                              group=f"{group}:class")


# the dev task's wording first; the others teach the edit, not one sentence
COMPOSED_TEMPLATES = (COMPOSED_TEMPLATE, "the same image with a {name} added in the empty area",
                      "add a {name} to this scene", "this scene, but with a {name} region as well")


def composed_examples(samples: Sequence[dict[str, Any]], out_dir: str | Path, count: int, seed: int = 0,
                      variants: int = 3, **options) -> tuple[list[Example], list[str]]:
    """Compositional-retrieval pairs: ``count`` base mosaics of ``samples`` with one free slot (2-4 regions, the
    dev task's layout), each edited ``variants`` times by :func:`geovec.data.mosaic.composed_edits`;
    (base image + "... an added <class> ...") -> the edited image, the same base's other edits as hard
    negatives (the edits of one base share a group). Bases and edits are rendered under ``out_dir``. Returns
    (examples, every rendered path)."""
    if count <= 0:
        return [], []
    opts = {"regions_per_mosaic": (2, 4), **options}
    bases = build_mosaics(samples, count, seed=seed, free_slots=1, id_prefix="train-edit", **opts)
    edits, meta = composed_edits(bases, samples, variants, np.random.default_rng(seed + 1))
    out_dir = Path(out_dir)
    base_paths = write_mosaics(bases, out_dir / "bases")
    edit_paths = write_mosaics(edits, out_dir / "edits")
    per_base: dict[int, list[int]] = {}
    for e, (b, _) in enumerate(meta):
        per_base.setdefault(b, []).append(e)
    examples = []
    for e, (b, name) in enumerate(meta):
        template = COMPOSED_TEMPLATES[e % len(COMPOSED_TEMPLATES)]
        examples.append(Example("composed", {"image": base_paths[b], "text": template.format(name=name)},
                                [{"image": edit_paths[e]}],
                                [{"image": edit_paths[o]} for o in per_base[b] if o != e], group=f"edit:{b}"))
    return examples, base_paths + edit_paths
