"""The RSMEB task registry: metadata per task and the function that builds it.

Two suites: ``rsmeb`` (the 21 tasks of the spec on the official releases, under ``--data-root``) and
``rsmeb-dev`` (tasks built from the real partial data in ``shared/data``, ``val`` split only). Each task says
its meta-task, query and candidate modalities, dataset, split, main metric and the task kind whose named
instruction the model uses on each side (``classification|retrieval|composed|vqa|region|geo``).
"""

from __future__ import annotations

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
            "description": self.description, "reference": self.reference,
        }


TASKS: dict[str, TaskSpec] = {}


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
    ("MillionAID", MillionAID, "test", "VLM2GeoVec 64.82"),
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

    def build(self, direction: int, ctx: BuildContext) -> TaskData:
        return builders.caption_retrieval_tasks(self.cls(ctx.data_root / self.folder, "test").samples)[direction]


for _name, _cls, _folder, _ref in (
    ("RSICD", RSICD, "rsicd", "mR: CLIP B/32 15.74, GeoRSCLIP 26.06, RemoteCLIP 35.26"),
    ("RSITMD", RSITMD, "rsitmd", "mR: GeoRSCLIP 35.33, RemoteCLIP 49.38"),
    ("UCM-captions", UCMCaptions, "ucm_captions", "VLM2GeoVec mR 52.76"),
):
    src = _Captions(_cls, _folder)
    for _dir, (_q, _c) in enumerate(((("image",), ("text",)), (("text",), ("image",)))):
        register(TaskSpec(
            name=f"{_name}-{'i2t' if _dir == 0 else 't2i'}", suite="rsmeb", meta_task="retrieval", dataset=_cls.name,
            split="test", query_modalities=_q, candidate_modalities=_c, main_score="mR",
            build=partial(src.build, _dir),
            description=f"{_cls.name} test {'image -> captions' if _dir == 0 else 'caption -> images'}, whole split "
                        f"as candidates (data under <data-root>/{_folder})", reference=_ref))


def _patterncom(ctx: BuildContext) -> TaskData:
    return builders.composed_patterncom_task(PatternCom(ctx.data_root).samples)


register(TaskSpec(
    name="PatternCom-composed", suite="rsmeb", meta_task="composed", dataset="PatternCom", split="test",
    query_modalities=("image", "text"), candidate_modalities=("image",), main_score="map", build=_patterncom,
    candidate_task="retrieval",
    description="image + another value of one attribute -> PatternNet images of that category with that value"))


def _vqa(cls, folder: str, ctx: BuildContext) -> TaskData:
    return builders.vqa_task(cls(ctx.data_root / folder, "test").samples)


register(TaskSpec(
    name="RSVQA-LR", suite="rsmeb", meta_task="vqa", dataset="RSVQA-LR", split="test",
    query_modalities=("image", "text"), candidate_modalities=("text",), main_score="p@1",
    build=partial(_vqa, RSVQALR, "rsvqa_lr"), candidate_task="vqa",
    description="(image, question) -> answer vocabulary of the question type", reference="VLM2GeoVec presence 89.78"))
register(TaskSpec(
    name="RSVQA-HR", suite="rsmeb", meta_task="vqa", dataset="RSVQA-HR", split="test",
    query_modalities=("image", "text"), candidate_modalities=("text",), main_score="p@1",
    build=partial(_vqa, RSVQAHR, "rsvqa_hr"), candidate_task="vqa",
    description="(image, question) -> answer vocabulary of the question type", reference="VLM2GeoVec presence 69.47"))


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
                      candidate_task=_ck, description=_desc + " (data under <data-root>/DIOR_RSVG)", reference=_ref))


def _geo_places(ctx: BuildContext, complete: dict[str, int]) -> tuple[list[dict], list[str]]:
    places, texts = [], []
    for folder, cls in (("rsvqa_lr", RSVQALRImages), ("rsvqa_hr", RSVQAHRImages)):
        ds = cls(ctx.data_root / folder, "all")
        if len(ds) < complete[folder]:
            raise ds._missing(f"partial release: {len(ds)} of {complete[folder]} GeoTIFFs")
        ds = cls(ctx.data_root / folder, "eval")
        places += ds.samples
        texts += [dev.GEO_TEXTS[folder]] * len(ds)
    return places, texts


RSVQA_IMAGE_COUNTS = {"rsvqa_lr": 772, "rsvqa_hr": 10659}

register(TaskSpec(
    name="Geo-image-location", suite="rsmeb", meta_task="geo", dataset="RSVQA-LR+HR GeoTIFFs", split="eval (id % 5 == 0)",
    query_modalities=("image",), candidate_modalities=("location",), main_score="p@1",
    build=lambda ctx: builders.geo_tasks(*_geo_places(ctx, RSVQA_IMAGE_COUNTS))[0],
    description="image -> its footprint centre among all evaluation locations; median error km, share within 25 km",
    reference="VLM2GeoVec semantic geo-localization P@1 17.8 (different data)"))
register(TaskSpec(
    name="Geo-text-location-image", suite="rsmeb", meta_task="geo", dataset="RSVQA-LR+HR GeoTIFFs",
    split="eval (id % 5 == 0)", query_modalities=("text", "location"), candidate_modalities=("image", "location"),
    main_score="p@1", build=lambda ctx: builders.geo_tasks(*_geo_places(ctx, RSVQA_IMAGE_COUNTS))[1],
    description="(sensor description, location) -> (image, location) among all evaluation places"))


# --- rsmeb-dev: built from shared/data ------------------------------------------------------------------------------
for spec in (
    TaskSpec("dev-RSICD-i2t", "rsmeb-dev", "retrieval", "RSICD", "val", ("image",), ("text",), "mR", dev.rsicd_i2t,
             "RSICD val: image -> all val captions (5 gold)"),
    TaskSpec("dev-RSICD-t2i", "rsmeb-dev", "retrieval", "RSICD", "val", ("text",), ("image",), "mR", dev.rsicd_t2i,
             "RSICD val: caption -> all val images"),
    TaskSpec("dev-RSICD-scene", "rsmeb-dev", "classification", "RSICD-scenes", "val", ("image",), ("text",), "p@1",
             dev.rsicd_scenes, "RSICD val image -> 31 class names (classes/<Class>.txt)"),
    TaskSpec("dev-mosaic-region-caption", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "box"),
             ("text",), "p@1", dev.mosaic_region_caption,
             "(mosaic, box) -> captions of the placed image among all RSICD val captions", candidate_task="retrieval"),
    TaskSpec("dev-mosaic-referring", "rsmeb-dev", "region", "RSICD val mosaics", "val", ("image", "text"),
             ("image", "box"), "p@1", dev.mosaic_referring_expression,
             "(mosaic, one caption of a placed image) -> that region among all regions of all mosaics; "
             "within_group = among the regions of its own mosaic"),
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
    TaskSpec("dev-geo-image-location", "rsmeb-dev", "geo", "RSVQA-LR+HR GeoTIFFs", "eval (id % 5 == 0)", ("image",),
             ("location",), "p@1", dev.geo_image_to_location,
             "image -> footprint centre among the 16 evaluation locations (11 LR + 5 HR)"),
    TaskSpec("dev-geo-text-location-image", "rsmeb-dev", "geo", "RSVQA-LR+HR GeoTIFFs", "eval (id % 5 == 0)",
             ("text", "location"), ("image", "location"), "p@1", dev.geo_text_location_to_image,
             "(sensor description, location) -> (image, location) among the 16 evaluation places"),
):
    register(spec)
