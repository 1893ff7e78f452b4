"""Named instructions per task kind (they live in the model config; these are the defaults).

Queries get a task-specific instruction; candidates ("documents") get a short generic one naming their
modalities, as the RSMEB protocol prescribes.
"""

from __future__ import annotations

TASKS = ("classification", "retrieval", "composed", "vqa", "region", "referring", "geo")

DEFAULT_QUERY_INSTRUCTIONS: dict[str, str] = {
    "classification": "Identify the scene category of this remote sensing image.",
    "retrieval": "Retrieve the remote sensing image or caption that matches this.",
    "composed": "Retrieve the remote sensing image that shows this image with the described change.",
    "vqa": "Answer the question about this remote sensing image.",
    "region": "Represent the marked region of this remote sensing image.",
    # an image + a referring expression: no region is marked on the query side
    "referring": "Find the region of this remote sensing image that the text describes.",
    "geo": "Find the place on Earth that matches this.",
}

_MODALITY_WORDS = {"image": "remote sensing image", "box": "image region", "location": "location", "text": "text"}


# The candidate side's named prompt (``prompt_name="document"``): ``{modalities}`` becomes the item's modalities.
DOCUMENT_TEMPLATE = "Represent the given {modalities}."


def modality_words(modalities: tuple[str, ...]) -> str:
    """``("image", "text")`` -> ``"remote sensing image and text"`` (a box item names its region, not its image)."""
    mods = list(modalities)
    if "box" in mods and "image" in mods:
        mods.remove("image")
    words = [_MODALITY_WORDS[m] for m in mods]
    if not words:
        return "input"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def fill_template(instruction: str, modalities: tuple[str, ...]) -> str:
    """An instruction with ``{modalities}`` in it (the ``document`` prompt) filled for one item; others as given."""
    if "{modalities}" not in instruction:
        return instruction
    return instruction.replace("{modalities}", modality_words(modalities))


def document_instruction(modalities: tuple[str, ...]) -> str:
    """Generic candidate-side instruction, e.g. ``Represent the given remote sensing image.``"""
    return fill_template(DOCUMENT_TEMPLATE, modalities)


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    return task
