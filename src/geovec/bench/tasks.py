"""The RSMEB task registry: metadata per task and the function that builds it.

Two suites: ``rsmeb`` (the 21 tasks of the spec on the official releases, under ``--data-root``) and
``rsmeb-dev`` (tasks built from the real partial data in ``shared/data``, ``val`` split only). Each task says
its meta-task, query and candidate modalities, dataset, split, main metric and the task kind whose named
instruction the model uses on each side (one of :data:`geovec.domain.TASK_KINDS`).

A new meta-task is one module plus one line: the module (e.g. ``geovec/bench/change.py``) builds its tasks and
calls :func:`register_meta_task` and :func:`register`; its name goes into :data:`TASK_MODULES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from geovec.bench import builders, dev
from geovec.data import (
    AID,
    DIORRSVG,
    RESISC45,
    RSICD,
    RSITMD,
    RSVQAHR,
    RSVQAHRImages,
    RSVQALR,
    RSVQALRImages,
    WHURS19,
    MillionAID,
    NWPURESISC12,
    PatternCom,
    PatternNet,
    UCMCaptions,
    UCMerced,
)
from geovec.bench.task_data import BuildContext, TaskData

META_TASKS = {
    "classification": "scene classification",
    "retrieval": "cross-modal retrieval",
    "composed": "compositional retrieval",
    "vqa": "VQA",
    "region": "region-level",
    "geo": "geospatial",
}
SUITES = ("rsmeb", "rsmeb-dev")
# modules that add meta-tasks and tasks of their own (register_meta_task + register), imported with this registry
TASK_MODULES: tuple[str, ...] = ("geovec.bench.outside",)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    suite: str
    meta_task: str  # key of META_TASKS
    dataset: str
    split: str
    query_modalities: tuple[str, ...]
    candidate_modalities: tuple[str, ...]
    main_score: str
    build: Callable[[BuildContext], TaskData] = field(repr=False, compare=False)
    description: str = ""
    query_task: str = ""  # task kind for the query instruction (defaults to meta_task)
    candidate_task: str = ""
    query_instruction: str | None = None  # overrides the model's named instruction
    candidate_instruction: str | None = None
    reference: str = ""  # published anchors from the spec
    protocol: str = ""  # the protocol the main score follows (published or ours), shown in results
    reference_note: str = ""  # how our protocol/data differ from the anchors' (shown beside them)

    @property
    def query_kind(self) -> str:
        return self.query_task or self.meta_task

    @property
    def candidate_kind(self) -> str:
        return self.candidate_task or self.meta_task

    def metadata(self) -> dict:
        return {
            "name": self.name, "suite": self.suite, "meta_task": self.meta_task,
            "meta_task_name": META_TASKS[self.meta_task], "dataset": self.dataset, "split": self.split,
            "query_modalities": list(self.query_modalities), "candidate_modalities": list(self.candidate_modalities),
            "main_score": self.main_score, "query_task": self.query_kind, "candidate_task": self.candidate_kind,
            "query_instruction": self.query_instruction, "candidate_instruction": self.candidate_instruction,
            "description": self.description, "reference": self.reference, "protocol": self.protocol,
            "reference_note": self.reference_note,
        }


TASKS: dict[str, TaskSpec] = {}


def register_meta_task(key: str, name: str) -> None:
    """A meta-task of a module in :data:`TASK_MODULES` (``key`` as in ``TaskSpec.meta_task``, ``name`` for reports)."""
    if META_TASKS.get(key, name) != name:
        raise ValueError(f"meta-task {key!r} is already {META_TASKS[key]!r}")
    META_TASKS[key] = name


def register(spec: TaskSpec) -> TaskSpec:
    if spec.name in TASKS:
        raise ValueError(f"task {spec.name!r} registered twice")
    if spec.meta_task not in META_TASKS or spec.suite not in SUITES:
        raise ValueError(f"task {spec.name!r}: bad meta_task {spec.meta_task!r} or suite {spec.suite!r}")
    TASKS[spec.name] = spec
    return spec


def tasks_in(suite: str) -> list[TaskSpec]:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {list(SUITES)}")
    return [t for t in TASKS.values() if t.suite == suite]


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}") from None


# --- rsmeb: the 21 tasks on the official releases --------------------------------------------------------------
def _classify(cls, split: str, ctx: BuildContext) -> TaskData:
    ds = cls(ctx.data_root, split)
    return builders.classification_task(ds.samples, ds.prompt_names)


_SCENES = [  # (task, loader, split, reference)
    ("AID", AID, "all", "VLM2GeoVec 77.25; CLIP B/32 66.4, GeoRSCLIP 70.3, RemoteCLIP 91.7"),
    ("UCM", UCMerced, "all", "VLM2GeoVec 90.24"),
    ("PatternNet", PatternNet, "all", "VLM2GeoVec 79.76; CLIP B/32 59.6, GeoRSCLIP 75.8, RemoteCLIP 55.9"),
    ("RESISC45", RESISC45, "all", "CLIP B/32 60.7, GeoRSCLIP 68.8, RemoteCLIP 68.1"),
    ("MillionAID", MillionAID, "train", "VLM2GeoVec 64.82"),
    ("WHU-RS19", WHURS19, "all", ""),
]
for _name, _cls, _split, _ref in _SCENES:
    register(TaskSpec(
        name=f"{_name}-scene", suite="rsmeb", meta_task="classification", dataset=_cls.name, split=_split,
        query_modalities=("image",), candidate_modalities=("text",), main_score="p@1",
        build=partial(_classify, _cls, _split),
        description=f"{_cls.name} scene classification: image -> all class names as text ('{builders.CLASS_TEMPLATE}')",
        candidate_task="classification", reference=_ref))


@dataclass(frozen=True)
class _Captions:
    cls: type
    folder: str

    def build(self, ctx: BuildContext) -> TaskData:
        return builders.caption_retrieval_task(self.cls(ctx.data_root / self.folder, "test").samples)


for _name, _cls, _folder, _ref in (
    ("RSICD", RSICD, "rsicd", "mR: CLIP B/32 15.74, GeoRSCLIP 26.06, RemoteCLIP 35.26"),
    ("RSITMD", RSITMD, "rsitmd", "mR: GeoRSCLIP 35.33, RemoteCLIP 49.38"),
    ("UCM-captions", UCMCaptions, "ucm_captions", "VLM2GeoVec mean of R@1/5/10 52.76"),
):
    register(TaskSpec(
        name=f"{_name}-retrieval", suite="rsmeb", meta_task="retrieval", dataset=_cls.name, split="test",
        query_modalities=("image", "text"), candidate_modalities=("text", "image"), main_score="mR",
        build=_Captions(_cls, _folder).build, protocol=builders.RETRIEVAL_PROTOCOL,
        description=f"{_cls.name} test image -> captions and caption -> images, whole split as candidates, every "
                    f"caption slot a query and a candidate; mR = mean of R@1/5/10 of both directions "
                    f"(data under <data-root>/{_folder})", reference=_ref))


def _patterncom(ctx: BuildContext) -> TaskData:
    ds = PatternCom(ctx.data_root)
    return builders.composed_patterncom_task(ds.samples, ds.pool)


register(TaskSpec(
    name="PatternCom-composed", suite="rsmeb", meta_task="composed", dataset="PatternCom", split="test",
    query_modalities=("image", "text"), candidate_modalities=("image",), main_score="map", build=_patterncom,
    candidate_task="retrieval", protocol=builders.PATTERNCOM_PROTOCOL,
    description="image + another value of one attribute -> PatternNet images of the query's class (rscir merges) "
                "with that value, among all PatternNet images; main score = mean over the six attributes of their mAP"))


def _vqa(cls, folder: str, split: str, ctx: BuildContext) -> TaskData:
    return builders.vqa_task(cls(ctx.data_root / folder, split).samples)


_VQA_DESC = ("(image, question) -> answer vocabulary of the question type; answers normalised as the official "
             "RSVQA code does (LR counts and areas binned); p@1 = overall accuracy (mean over questions), "
             "p@1_by_label = per question type")
for _name, _cls, _folder, _split, _desc, _ref in (
    ("RSVQA-LR", RSVQALR, "rsvqa_lr", "test", "", "VLM2GeoVec presence 89.78"),
    ("RSVQA-HR", RSVQAHR, "rsvqa_hr", "test", "", "VLM2GeoVec presence 69.47"),
    ("RSVQA-HR-phili", RSVQAHR, "rsvqa_hr", "test_phili", " (HRBEN's second test set: Philadelphia tiles)", ""),
):
    register(TaskSpec(
        name=_name, suite="rsmeb", meta_task="vqa", dataset=_cls.name, split=_split,
        query_modalities=("image", "text"), candidate_modalities=("text",), main_score="p@1",
        build=partial(_vqa, _cls, _folder, _split), candidate_task="vqa", description=_VQA_DESC + _desc,
        reference=_ref))


def _dior(ctx: BuildContext) -> list[dict]:
    return DIORRSVG(ctx.data_root / "DIOR_RSVG", "test").samples


def _dior_classes(ctx: BuildContext) -> TaskData:
    samples = _dior(ctx)
    names = sorted({s["prompt_name"] for s in samples})
    for s in samples:
        s["label"] = names.index(s["prompt_name"])
    return builders.classification_task(samples, names, box_key="box")


for _name, _fn, _q, _c, _ck, _desc, _ref in (
    ("DIOR-RSVG-region-caption", lambda ctx: builders.region_caption_task(_dior(ctx)), ("image", "box"), ("text",),
     "retrieval", "(image, box) -> its referring expression among all test expressions", "VLM2GeoVec P@1 26.6"),
    ("DIOR-RSVG-referring", lambda ctx: builders.referring_expression_task(_dior(ctx)), ("image", "text"),
     ("image", "box"), "region", "(image, expression) -> its object (image + box) among all test objects",
     "VLM2GeoVec P@1 32.5"),
    ("DIOR-RSVG-box-class", _dior_classes, ("image", "box"), ("text",), "classification",
     "(image, box) -> object class names", ""),
    ("DIOR-RSVG-region-region", lambda ctx: builders.region_to_region_task(_dior(ctx)), ("image", "box"),
     ("image", "box"), "region", "(image, box) -> other test objects of the same class", ""),
):
    register(TaskSpec(name=_name, suite="rsmeb", meta_task="region", dataset="DIOR-RSVG", split="test",
                      query_modalities=_q, candidate_modalities=_c, main_score="p@1", build=_fn,
                      candidate_task=_ck, description=_desc + " (data under <data-root>/DIOR_RSVG)", reference=_ref,
                      query_task="referring" if _name.endswith("-referring") else ""))


def _geo_places(ctx: BuildContext, complete: dict[str, int]) -> list[dict]:
    from geovec.data.geo import SOURCES, geo_places

    for folder, cls in (("rsvqa_lr", RSVQALRImages), ("rsvqa_hr", RSVQAHRImages)):
        ds = cls(ctx.data_root / folder, "all")
        if len(ds) < complete[folder]:
            raise ds.missing_error(f"partial release: {len(ds)} of {complete[folder]} GeoTIFFs")
    sources = [s for s in SOURCES if s.dataset in complete]
    return geo_places(ctx.data_root, "eval", cache_dir=ctx.cache_dir, seed=dev.GEO_SPLIT_SEED, sources=sources)


RSVQA_IMAGE_COUNTS = {"rsvqa_lr": 772, "rsvqa_hr": 10659}

register(TaskSpec(
    name="Geo-image-location", suite="rsmeb", meta_task="geo", dataset="RSVQA-LR+HR GeoTIFFs",
    split="spatially held-out", query_modalities=("image",), candidate_modalities=("location",), main_score="p@1",
    build=lambda ctx: builders.geo_tasks(_geo_places(ctx, RSVQA_IMAGE_COUNTS))[0], protocol=builders.GEO_PROTOCOL,
    description="chip -> its scene's centre among all held-out scene centres; accuracy within 1/25/200/750/2500 km",
    reference="VLM2GeoVec semantic geo-localization P@1 17.8", reference_note="different data and candidate pool"))
register(TaskSpec(
    name="Geo-text-location-image", suite="rsmeb", meta_task="geo", dataset="RSVQA-LR+HR GeoTIFFs",
    split="spatially held-out", query_modalities=("text", "location"), candidate_modalities=("image",),
    main_score="p@1", build=lambda ctx: builders.geo_tasks(_geo_places(ctx, RSVQA_IMAGE_COUNTS))[1],
    protocol=builders.GEO_PROTOCOL,
    description="(description, chip centre) -> chip images of that scene among all held-out chips (no location "
                "on the candidate side)"))


# --- rsmeb-dev: built from shared/data ------------------------------------------------------------------------------
def _dev_nwpu_resisc12(ctx: BuildContext) -> TaskData:
    ds = NWPURESISC12(ctx.data_root / "nwpu_resisc12", "all")
    return builders.classification_task(ds.samples, ds.prompt_names)


for spec in (
    TaskSpec("dev-RSICD-retrieval", "rsmeb-dev", "retrieval", "RSICD", "val", ("image", "text"), ("text", "image"),
             "mR", dev.rsicd_retrieval,
             "RSICD val: image -> all 2,455 val caption slots (5 gold) and caption slot -> all 491 val images; "
             "mR = mean of R@1/5/10 of both directions", protocol=builders.RETRIEVAL_PROTOCOL,
             reference="RSICD test mR: CLIP B/32 15.74, GeoRSCLIP 26.06, RemoteCLIP 35.26",
             reference_note="anchors are on the official RSICD test split (1,093 images); this is a 491-image carve-out "
                            "of AMFMN train, a smaller pool, so scores run higher than on test"),
    TaskSpec("dev-RSICD-scene", "rsmeb-dev", "classification", "RSICD-scenes", "val", ("image",), ("text",), "p@1",
             dev.rsicd_scenes, "RSICD val image -> 31 class names (classes/<Class>.txt)"),
    TaskSpec("dev-RSICD-vqa", "rsmeb-dev", "vqa", "RSICD val, derived questions", "val", ("image", "text"),
             ("text",), "p@1", dev.rsicd_vqa,
             "(RSICD val image, question derived from its captions and class) -> the answers of the question type; "
             "p@1_by_label per type (presence, count, comp, rural_urban, scene), majority baseline per type in "
             "task_info", candidate_task="vqa", reference_note="derived questions, not RSVQA's: not comparable to "
             "the RSVQA anchors"),
    TaskSpec("dev-NWPU-RESISC12-scene", "rsmeb-dev", "classification", "NWPU-RESISC12", "all (zero-shot)", ("image",),
             ("text",), "p@1", _dev_nwpu_resisc12,
             "NWPU-RESISC12 (shared/data/nwpu_resisc12, 12 RESISC45 classes x 100) image -> 12 class names; never "
             "trained on: zero-shot on imagery and class names the model has not seen", candidate_task="classification",
             reference="RESISC45 (45 classes) zero-shot top-1, RS-TransCLIP prompts: CLIP B/32 60.7, GeoRSCLIP 68.8, "
                       "RemoteCLIP 68.1",
             reference_note="12 of the 45 classes (two of them merged), single template: an easier label set"),
    TaskSpec("dev-mosaic-region-caption", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "box"),
             ("text",), "p@1", dev.mosaic_region_caption,
             "(mosaic, box) -> captions of the placed image among all RSICD val captions", candidate_task="retrieval",
             reference="VLM2GeoVec region-caption P@1 26.6",
             reference_note="DIOR-RSVG objects and expressions there; RSICD-scene mosaics and captions here"),
    TaskSpec("dev-mosaic-referring", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "text"),
             ("image", "box"), "p@1", dev.mosaic_referring_expression,
             "(mosaic, one caption of a placed image) -> that region among all regions of all mosaics; "
             "within_group = among the regions of its own mosaic (the effective chance)", query_task="referring",
             reference="VLM2GeoVec referring-expression P@1 32.5",
             reference_note="DIOR-RSVG there; here whole placed scenes on a mosaic, a much easier grounding"),
    TaskSpec("dev-mosaic-box-class", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "box"), ("text",),
             "p@1", dev.mosaic_box_class, "(mosaic, box) -> the placed image's class among the 31 class names",
             candidate_task="classification"),
    TaskSpec("dev-mosaic-region-region", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "box"),
             ("image", "box"), "p@1", dev.mosaic_region_to_region,
             "(mosaic, box) -> the regions of the same class in other mosaics (the query itself excluded)"),
    TaskSpec("dev-mosaic-composed", "rsmeb-dev", "composed", "RSICD val mosaics", "val", ("image", "text"),
             ("image",), "p@1", dev.mosaic_composed,
             "(mosaic, 'the same scene with an added <class> region') -> the edited mosaic among all edits",
             candidate_task="retrieval"),
    TaskSpec("dev-geo-image-location", "rsmeb-dev", "geo", "RSVQA-LR/HR + EuroSAT-MS + SatCLIP-S2 chips",
             "spatially held-out", ("image",), ("location",), "p@1", dev.geo_image_to_location,
             "chip -> its scene's centre among all held-out scene centres (80 scenes, 536 chips); accuracy within "
             "1/25/200/750/2500 km", protocol=builders.GEO_PROTOCOL,
             reference="VLM2GeoVec semantic geo-localization P@1 17.8", reference_note="different data and candidate pool"),
    TaskSpec("dev-geo-text-location-image", "rsmeb-dev", "geo", "RSVQA-LR/HR + EuroSAT-MS + SatCLIP-S2 chips",
             "spatially held-out", ("text", "location"), ("image",), "p@1", dev.geo_text_location_to_image,
             "(description, chip centre) -> the chips of that scene among all held-out chip images (no location on "
             "the candidate side)", protocol=builders.GEO_PROTOCOL),
):
    register(spec)

for _module in TASK_MODULES:
    importlib.import_module(_module)
