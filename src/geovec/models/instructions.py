"""Named instructions per task kind (they live in the model config; these are the defaults).

Queries get a task-specific instruction; candidates ("documents") get a short generic one naming their
modalities, as the RSMEB protocol prescribes.
"""

from __future__ import annotations

import re

from geovec.domain import SIDES, TASK_KINDS

TASKS = TASK_KINDS  # the task kinds (geovec.domain), each with a named query instruction

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

if set(DEFAULT_QUERY_INSTRUCTIONS) != set(TASKS):  # a task kind of geovec.domain needs its default instruction here
    raise ImportError(f"default query instructions {sorted(DEFAULT_QUERY_INSTRUCTIONS)} != task kinds {sorted(TASKS)}")

_PROMPT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # "query", "passage": a prompt name, not a sentence

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


def call_instruction(model, instruction: str | None = None, task: str | None = None, side: str = "query",
                     prompt_name: str | None = None, prompt: str | None = None) -> tuple[str | None, str, str | None]:
    """``(task, side, instruction)`` of an encode call that may use sentence-transformers' keywords: its task
    names ``"query"`` / ``"document"`` are sides here (of the retrieval task); ``prompt`` is a literal
    instruction; ``prompt_name`` a key of ``model.prompts`` (a task kind, ``"query"``, ``"document"`` or an
    extra name of the config); an ``instruction`` that is one word is taken as a prompt name. Items are then
    instructed by :func:`resolve_instruction`. The one place ``encode`` and the sentence-transformers module
    read these keywords."""
    if task in ("query", "document"):  # sentence-transformers' task names are sides here
        side, task = task, "retrieval"
    if instruction is not None and prompt_name is None and prompt is None and isinstance(instruction, str) \
            and _PROMPT_NAME.match(instruction):
        prompt_name, instruction = instruction, None
    if prompt is not None:
        instruction = prompt
    elif prompt_name is not None:
        names = model.prompts
        if prompt_name not in names:
            raise ValueError(f"unknown prompt name {prompt_name!r}; this model's prompts are {sorted(names)} "
                             "(a literal instruction is a sentence: pass it as prompt=... or instruction=...)")
        if prompt_name in ("query", "document"):
            side, task = prompt_name, task or "retrieval"
            if prompt_name in (getattr(model.config, "extra", None) or {}).get("prompts", {}):
                instruction = names[prompt_name]
        elif prompt_name in TASKS:
            side, task = "query", prompt_name
        else:
            instruction = names[prompt_name]
    if side not in SIDES:
        raise ValueError("side must be 'query' or 'document'")
    return task, side, instruction


def resolve_instruction(item, task: str | None = None, side: str = "query", instruction: str | None = None,
                        model=None) -> str | None:
    """The instruction ``item`` is embedded with: the one rule every caller goes through (``encode``, the
    benchmark, training batches, ``geovec embed``, the index).

    The item's own instruction wins, then ``instruction`` (the call's); else, with a ``task`` kind, the named
    instruction of ``side``: ``model.query_instruction(task)`` on the query side, ``model.document_instruction(
    task, item)`` on the candidate side (the defaults of this module where ``model`` is None or lacks them:
    models outside geovec, baselines). ``{modalities}`` is filled from the item's modalities. None: no
    instruction. Callers pass ``task`` and ``side``; they never pick the text themselves.
    """
    if side not in SIDES:
        raise ValueError("side must be 'query' or 'document'")
    text = getattr(item, "instruction", None) or instruction
    if text is None and task is not None:
        check_task(task)
        if side == "query":
            named = getattr(model, "query_instruction", None)
            text = named(task) if named is not None else DEFAULT_QUERY_INSTRUCTIONS[task]
        else:
            named = getattr(model, "document_instruction", None)
            text = named(task, item) if named is not None else document_instruction(item.order)
    return None if text is None else fill_template(text, item.order)


def instructed(items, task: str | None = None, side: str = "query", instruction: str | None = None, model=None):
    """``items`` (:class:`~geovec.inputs.Item`) with their instructions resolved by :func:`resolve_instruction`."""
    return [it.with_instruction(resolve_instruction(it, task, side, instruction, model)) for it in items]


def task_of_query_instruction(config, instruction: str | None) -> str | None:
    """The task kind whose named query instruction (``config.query_instructions``, else the default) is
    ``instruction``; None for any other text (a custom instruction, a document instruction, none)."""
    if not instruction:
        return None
    named = getattr(config, "query_instructions", None) or {}
    return next((t for t in TASKS if instruction == (named.get(t) or DEFAULT_QUERY_INSTRUCTIONS[t])), None)


def global_half_weight(config, instruction: str | None) -> float:
    """The dual-path model's weight of an item's global half: ``query_weights[task]`` (the ``global_path`` entry of
    ``config.extra``) where ``instruction`` is that task's named query instruction, else 1."""
    table = (getattr(config, "extra", None) or {}).get("global_path", {}).get("query_weights") or {}
    if not table:
        return 1.0
    return float(table.get(task_of_query_instruction(config, instruction) or "", 1.0))
