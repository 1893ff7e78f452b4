"""Training examples (:class:`~geovec.train.data.Example`) from dataset samples.

Datasets are read by the data layer, :mod:`geovec.data`, the readers the benchmark uses too, so whatever is
fixed in a reader (a layout, empty captions, placeholder rows, a class name) is fixed for training as well.
This module only turns their samples into query/positive/negative examples::

    from geovec.data import DIORRSVG, RSICD, RSICDScenes, RSVQALR, UCMerced
    caption_examples(RSICD(root, "train").samples)                 # image <-> captions, both directions
    classification_examples(RSICDScenes(root, "train").samples)    # image -> class name (others negatives)
    classification_examples(UCMerced(root).samples)                # no official split: hold out eval images
    vqa_examples(RSVQALR(root, "train").samples)                   # (image, question) -> answer
    caption_vqa_examples(RSICDScenes(root, "train").samples)       # derived questions from captions + class
    referring_examples(DIORRSVG(root, "train").samples)            # box <-> referring expression

For your own data in those formats at other paths: :func:`geovec.data.captions.karpathy_captions` and
:func:`~geovec.data.captions.precomp_captions` (caption pairs for :func:`caption_examples`),
:func:`class_folders`, :func:`rsvqa_examples`, :func:`dior_rsvg_examples` (the same readers underneath).
Image paths in the examples are absolute strings, so the written JSONL can live anywhere. Never convert an
evaluation split into training data.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from geovec.bench.builders import CLASS_TEMPLATE
from geovec.data.base import prompt_name
from geovec.data.dior_rsvg import DIORRSVG
from geovec.data.rsvqa import RSVQA, RSVQAHR, RSVQALR
from geovec.data.vqa_gen import DerivedVQA, generate_pairs, pairs_to_samples
from geovec.data.vqa_questions import answer_value
from geovec.data.scenes import ClassFolders
from geovec.train.data import Example


def class_prompts(name: str, prompt: str | None = None) -> list[str]:
    """Texts that name a scene class: the prompt name (``prompt``, else :func:`prompt_name` of the native
    ``name``) first, then the benchmark's template (``"a remote sensing image of {name}."``)."""
    p = prompt or prompt_name(name)
    return [p, CLASS_TEMPLATE.format(p)]


def _abs(path) -> str:
    return str(Path(path).absolute())


# --- caption sets (RSICD, RSITMD, UCM-captions, Sydney-captions) -----------------------------------------------
def caption_examples(samples: Iterable[dict | tuple], both_directions: bool = True) -> Iterator[Example]:
    """Caption samples (dicts with ``image`` and ``captions``, e.g. ``RSICD(root, "train").samples``; or
    ``(image path, captions)`` pairs) -> image->captions and caption->image retrieval examples, grouped per
    image so one image's captions are never each other's negatives."""
    for s in samples:
        path, caps = (s["image"], s.get("captions", [])) if isinstance(s, dict) else s
        caps = [c.strip() for c in caps if c and c.strip(" .")]
        if not caps:
            continue
        path = _abs(path)
        yield Example("retrieval", {"image": path}, [{"text": c} for c in caps], group=path)
        if both_directions:
            for c in caps:
                yield Example("retrieval", {"text": c}, [{"image": path}], group=path)


# --- scene classification ----------------------------------------------------------------------------------------
def classification_examples(samples: Iterable[dict | tuple], all_negatives: bool = True) -> Iterator[Example]:
    """Scene samples (dicts with ``image``, ``class_name`` and optionally ``prompt_name``, e.g.
    ``RSICDScenes(root, "train").samples`` or any :class:`geovec.data.ClassFolderDataset`; or ``(image path,
    class name)`` pairs) -> image -> class-name examples. Positives are :func:`class_prompts`; every other class
    name is a hard negative, which matches the evaluation (rank all class names)."""
    rows = []
    for s in samples:
        if isinstance(s, dict):
            rows.append((_abs(s["image"]), s["class_name"], s.get("prompt_name") or prompt_name(s["class_name"])))
        else:
            rows.append((_abs(s[0]), s[1], prompt_name(s[1])))
    prompts = {c: p for _, c, p in rows}
    names = sorted(prompts)
    for path, c, _ in rows:
        neg = [{"text": prompts[o]} for o in names if o != c] if all_negatives else []
        yield Example("classification", {"image": path}, [{"text": t} for t in class_prompts(c, prompts[c])], neg)


def class_folders(root: str | Path) -> list[tuple[str, str]]:
    """``root/<class>/<image>`` (UCM, AID, PatternNet, RESISC45 layouts; nested folders as in Million-AID: the
    leaf folder is the class) -> [(image path, class)], read by :class:`geovec.data.scenes.ClassFolders`. For
    the named datasets prefer their loaders (``UCMerced(root).samples``): they carry the prompt names."""
    ds = ClassFolders(Path(root).absolute())
    return [(str(s["image"]), s["class_name"]) for s in ds.samples]


# --- RSVQA ------------------------------------------------------------------------------------------------------
def vqa_examples(samples: Iterable[dict], type_negatives: bool = False) -> Iterator[Example]:
    """RSVQA samples (``RSVQALR(root, "train").samples``, ``DerivedVQA(root, "train").samples``) -> (image +
    question) -> answer examples. ``type_negatives``: every other answer of the question's type (in these
    samples) is a hard negative, as the evaluation ranks the answers of the type."""
    samples = list(samples)
    vocab: dict[str, list[str]] = defaultdict(list)
    if type_negatives:
        for s in samples:
            if str(s["answer"]) not in vocab[s["type"]]:
                vocab[s["type"]].append(str(s["answer"]))
    for s in samples:
        answer = str(s["answer"])
        # another wording of the same answer ("three" for "3", from paraphrased pairs) is no negative
        negatives = [{"text": a} for a in sorted(vocab[s["type"]]) if answer_value(a) != answer_value(answer)] \
            if type_negatives else []
        yield Example("vqa", {"image": _abs(s["image"]), "text": s["question"]}, [{"text": answer}], negatives,
                      group=f"{s['image_id']}:{s['question_id']}")


def caption_vqa_examples(samples: Iterable[dict | tuple], reference: Iterable[dict | tuple] | None = None,
                         seed: int = 0, type_negatives: bool = False, **rules) -> Iterator[Example]:
    """Derived question/answer pairs of a caption set (:func:`geovec.data.vqa_gen.generate_pairs`; samples with
    ``image``, ``captions`` and ``class_name``, e.g. ``RSICDScenes(root, "train").samples``) -> VQA examples,
    answers normalised as :class:`~geovec.data.vqa_gen.DerivedVQA` reads them (RSVQA-HR: counts stay numbers).
    Only ever on a training split: the rsmeb-dev task ``dev-RSICD-vqa`` is built the same way from RSICD val."""
    pairs = generate_pairs(list(samples), reference=None if reference is None else list(reference), seed=seed,
                           **rules)
    return vqa_examples(pairs_to_samples(pairs, DerivedVQA.vocab), type_negatives=type_negatives)


def rsvqa_examples(root: str | Path, split: str, prefix: str = "LR", image_dir: str = "Images_LR",
                   keep_image=lambda img_id: True, vocab: str | None = None) -> Iterator[Example]:
    """``<P>_split_<split>_{questions,answers,images}.json`` -> (image + question) -> answer examples, read by
    :class:`geovec.data.RSVQALR` / ``RSVQAHR`` / :class:`geovec.data.vqa_gen.DerivedVQA` (``prefix="VQA"``,
    ``image_dir="images"``, what ``geovec data vqa-gen`` writes); placeholder rows skipped; ``keep_image(img_id)``
    filters. ``vocab``: the answer normalisation (``"LR"`` bins counts, ``"HR"`` keeps them; default: the known
    dataset's, else LR)."""
    known = {(c.prefix, c.image_dir): c for c in (RSVQALR, RSVQAHR, DerivedVQA)}
    cls = known.get((prefix, image_dir))
    if cls is None or split not in cls.splits or (vocab is not None and vocab != cls.vocab):
        cls = type("RSVQAFiles", (RSVQA,), {"name": "RSVQA files", "url": "your own data", "prefix": prefix,
                                            "image_dir": image_dir, "splits": (split,),
                                            "vocab": vocab or (cls.vocab if cls else "LR"),
                                            "layout": f"<root>/{prefix}_split_{split}_*.json + <root>/{image_dir}/<id>.tif"})
    return vqa_examples(s for s in cls(Path(root), split).samples if keep_image(s["image_id"]))


# --- referring expressions (DIOR-RSVG) ------------------------------------------------------------------------
def referring_examples(samples: Iterable[dict]) -> Iterator[Example]:
    """Grounding samples (dicts with ``image``, ``box``, ``expression``, e.g. ``DIORRSVG(root, "train").samples``)
    -> (image + box) -> expression, and (image + expression) -> (image + box), with the image's other objects
    *of the same samples* (so never an evaluation split's expression) as hard negatives."""
    samples = list(samples)
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in samples:
        by_image[_abs(s["image"])].append(s)
    for k, s in enumerate(samples):
        if not s.get("expression"):
            continue
        image = _abs(s["image"])
        group = f"{image}#{s.get('object_index', k)}"
        region = {"image": image, "box": [float(v) for v in s["box"]]}
        others = [o for o in by_image[image] if o is not s and list(o["box"]) != list(s["box"])]
        yield Example("region", region, [{"text": s["expression"]}],
                      [{"text": o["expression"]} for o in others if o.get("expression")], group=group)
        yield Example("region", {"image": image, "text": s["expression"]}, [dict(region)],
                      [{"image": image, "box": [float(v) for v in o["box"]]} for o in others], group=group)


def dior_rsvg_examples(root: str | Path, split: str = "train") -> Iterator[Example]:
    """Referring-expression examples of one DIOR-RSVG split (:class:`geovec.data.DIORRSVG`: xml + split files
    of global object indices)."""
    return referring_examples(DIORRSVG(Path(root), split).samples)


# --- NWPU VHR-10 (the train part of the seeded split only) ---------------------------------------------------------
def vhr10_examples(samples: Iterable[dict]) -> Iterator[Example]:
    """NWPU VHR-10 objects (``NWPUVHR10(root, "train").samples``; never the ``dev`` part) -> region pairs:
    (image + box) -> its class name (:func:`class_prompts`, the other nine names as hard negatives), and the
    referring pairs of :func:`referring_examples` on "the <class>" / position phrases
    (:func:`geovec.data.nwpu_vhr10.with_referring_expressions`): box -> phrase and phrase -> box, the image's other
    objects as hard negatives."""
    from geovec.data.nwpu_vhr10 import VHR10_CLASSES, is_dev_image, with_referring_expressions

    samples = list(samples)
    dev = sorted({s["image_id"] for s in samples if is_dev_image(s["image_id"])})
    if dev:
        raise ValueError(f"VHR-10 image {dev[0]} is in the dev part (rsmeb-dev): train on NWPUVHR10(root, 'train')")
    for s in samples:
        image = _abs(s["image"])
        q = {"image": image, "box": [float(v) for v in s["box"]]}
        yield Example("region", q, [{"text": t} for t in class_prompts(s["class_name"], s["class_name"])],
                      [{"text": CLASS_TEMPLATE.format(c)} for c in VHR10_CLASSES if c != s["class_name"]],
                      group=f"{image}#{s['object_index']}:class")
    yield from referring_examples(with_referring_expressions(samples))


# --- sensor-simulated views (geovec.train.sensor_sim) -------------------------------------------------------------
def sensor_view_examples(views: Iterable[dict], samples: Sequence[dict]) -> Iterator[Example]:
    """Rendered sensor views (rows of :func:`geovec.train.sensor_sim.render_views`: ``source``, ``image``) of scene
    samples (``image``, ``class_name``, ``captions``; e.g. ``RSICDScenes(root, "train").samples``) -> the view ->
    class-name examples (other class names as hard negatives) and view -> captions examples of its source."""
    by_source = {_abs(s["image"]): s for s in samples}
    views = list(views)
    rows = [{**by_source[_abs(v["source"])], "image": v["image"]} for v in views]
    yield from classification_examples(rows)
    for v, r in zip(views, rows):
        caps = [c.strip() for c in r.get("captions", []) if c and c.strip(" .")]
        if caps:
            yield Example("retrieval", {"image": _abs(v["image"])}, [{"text": c} for c in caps], group=_abs(v["source"]))
