"""The JSONL training format and contrastive batches built from it.

One line = one training example::

    {"task": "retrieval",                          # a task kind (geovec.domain.TASK_KINDS)
     "query": {"image": "imgs/a.jpg"},             # an interleaved item, as accepted by model.encode
     "positive": {"text": "a runway beside ..."},  # or "positives": [item, ...] (several positives)
     "negatives": [{"text": "a harbour ..."}],     # optional explicit hard negatives
     "group": "a.jpg"}                             # optional: examples sharing a group never act as
                                                   # each other's negatives (e.g. the captions of one image)

Items are dicts with the keys of the encode API (``geovec.domain.ITEM_KEYS``): ``image`` (a file path; relative
paths are resolved against the JSONL file's folder), ``text``, ``box`` / ``boxes`` (pixel xyxy in that image's
frame), ``lat`` / ``lon`` (WGS84 degrees), ``instruction``, ``bands``. Without an ``instruction`` the query gets the model's instruction for
``task`` and candidates the generic "Represent the given ..." one, exactly as ``encode_query`` /
``encode_document`` do at inference, so training and inference see the same prompts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from geovec.domain import ITEM_KEYS
from geovec.inputs import GeoVecInputError, Item, parse_item
from geovec.models.instructions import TASKS, resolve_instruction



@dataclass
class Example:
    """One query with its positive(s) and optional hard negatives (items as JSON-style dicts)."""

    task: str
    query: dict
    positives: list[dict]
    negatives: list[dict] = field(default_factory=list)
    group: str | None = None
    source: str = ""  # where it came from, "file.jsonl:line"
    max_negatives: int | None = None  # per-source override of the batch's hard-negative count

    def to_json(self) -> dict:
        d = {"task": self.task, "query": self.query}
        if len(self.positives) == 1:
            d["positive"] = self.positives[0]
        else:
            d["positives"] = self.positives
        if self.negatives:
            d["negatives"] = self.negatives
        if self.group is not None:
            d["group"] = self.group
        return d


def _check_item(raw, where: str, base: Path | None) -> dict:
    if not isinstance(raw, dict):
        raise GeoVecInputError(f"{where}: an item must be a JSON object with keys {list(ITEM_KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(ITEM_KEYS))
    if unknown:
        raise GeoVecInputError(f"{where}: unknown item key(s) {unknown}; allowed {list(ITEM_KEYS)}")
    item = dict(raw)
    if isinstance(item.get("image"), str) and base is not None and not os.path.isabs(item["image"]):
        item["image"] = str(base / item["image"])
    return item


def example_from_json(d: dict, where: str = "", base: Path | None = None) -> Example:
    """Validate one parsed JSONL line (cheap structural checks; images are opened when batched)."""
    if not isinstance(d, dict):
        raise GeoVecInputError(f"{where}: each line must be a JSON object")
    task = d.get("task")
    if task not in TASKS:
        raise GeoVecInputError(f"{where}: 'task' must be one of {list(TASKS)}, got {task!r}")
    if "query" not in d:
        raise GeoVecInputError(f"{where}: missing 'query'")
    if ("positive" in d) == ("positives" in d):
        raise GeoVecInputError(f"{where}: give exactly one of 'positive' (an item) or 'positives' (a list of items)")
    positives = [d["positive"]] if "positive" in d else d["positives"]
    if not isinstance(positives, list) or not positives:
        raise GeoVecInputError(f"{where}: 'positives' must be a non-empty list of items")
    negatives = d.get("negatives", [])
    if not isinstance(negatives, list):
        raise GeoVecInputError(f"{where}: 'negatives' must be a list of items")
    extra = sorted(set(d) - {"task", "query", "positive", "positives", "negatives", "group"})
    if extra:
        raise GeoVecInputError(f"{where}: unknown key(s) {extra}")
    return Example(
        task=task,
        query=_check_item(d["query"], f"{where} query", base),
        positives=[_check_item(p, f"{where} positive {k}", base) for k, p in enumerate(positives)],
        negatives=[_check_item(n, f"{where} negative {k}", base) for k, n in enumerate(negatives)],
        group=None if d.get("group") is None else str(d["group"]),
        source=where,
    )


def json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` per non-blank line of a JSON-lines file, ``where`` = ``<file name>:<line>``; a line that is
    not JSON is a :class:`GeoVecInputError` naming it."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as e:
                raise GeoVecInputError(f"{where}: not valid JSON ({e.msg})") from None


def read_jsonl(path: str | os.PathLike) -> list[Example]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training data {path} does not exist")
    out = [example_from_json(d, where, path.parent) for where, d in json_lines(path)]
    if not out:
        raise GeoVecInputError(f"{path}: no examples")
    return out


def write_jsonl(examples: Iterable[Example | dict], path: str | os.PathLike) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_json() if isinstance(ex, Example) else ex) + "\n")
            n += 1
    return n


# --- batches ---------------------------------------------------------------------------------------------------
@dataclass
class ContrastiveBatch:
    """Queries, the merged candidate pool and which candidate is a positive of which query.

    ``query_pos_keys[i]``: keys of query i's positives; ``candidate_keys[j]``; ``*_groups``: example groups.
    The positive mask is built from keys and groups (:func:`positive_mask`), so it can be rebuilt after
    gathering keys from every rank.
    """

    queries: list[Item]
    candidates: list[Item]
    query_pos_keys: list[list[str]]
    query_groups: list[str | None]
    candidate_keys: list[str]
    candidate_groups: list[str | None]  # group of the example that listed it as a positive (None: negative)
    tasks: list[str]


def item_key(item: dict, instruction: str | None) -> str:
    return json.dumps(item, sort_keys=True) + "|" + (instruction or "")


def positive_mask(query_pos_keys, query_groups, candidate_keys, candidate_groups) -> torch.Tensor:
    """(B, N) bool: candidate j is a positive of query i if it equals one of i's positives, or it is a
    positive of an example in the same group as i."""
    index: dict[str, list[int]] = {}
    for j, k in enumerate(candidate_keys):
        index.setdefault(k, []).append(j)
    by_group: dict[str, list[int]] = {}
    for j, g in enumerate(candidate_groups):
        if g is not None:
            by_group.setdefault(g, []).append(j)
    mask = torch.zeros(len(query_pos_keys), len(candidate_keys), dtype=torch.bool)
    for i, keys in enumerate(query_pos_keys):
        for k in keys:
            for j in index.get(k, ()):
                mask[i, j] = True
        g = query_groups[i]
        if g is not None:
            for j in by_group.get(g, ()):
                mask[i, j] = True
    return mask


def build_batch(examples: Sequence[Example], model, rng: np.random.Generator, positives_per_query: int = 1,
                hard_negatives: int = 0) -> ContrastiveBatch:
    """Items with their instructions resolved as at inference; identical candidates merged.

    ``positives_per_query``: how many of an example's positives enter the batch (sampled; 0 = all).
    ``hard_negatives``: how many of its explicit negatives enter (sampled; 0 = none, -1 = all).
    """
    queries, qkeys, qgroups, tasks = [], [], [], []
    cand_items: dict[str, Item] = {}
    cand_groups: dict[str, str | None] = {}

    def parse(raw: dict, ex: Example, role: str) -> Item:
        try:
            return parse_item(raw)
        except GeoVecInputError as e:
            raise GeoVecInputError(f"{ex.source} {role}: {e}") from None

    for ex in examples:
        q = parse(ex.query, ex, "query")
        q = q.with_instruction(resolve_instruction(q, ex.task, "query", model=model))
        pos = list(ex.positives)
        if positives_per_query and len(pos) > positives_per_query:
            pos = [pos[k] for k in rng.choice(len(pos), positives_per_query, replace=False)]
        neg = list(ex.negatives)
        limit = hard_negatives if ex.max_negatives is None else ex.max_negatives
        if limit >= 0:
            take = min(limit, len(neg))
            neg = [neg[k] for k in rng.choice(len(neg), take, replace=False)] if take else []
        keys = []
        for raw, is_pos in [(p, True) for p in pos] + [(n, False) for n in neg]:
            it = parse(raw, ex, "positive" if is_pos else "negative")
            it = it.with_instruction(resolve_instruction(it, ex.task, "document", model=model))
            k = item_key(raw, it.instruction)
            cand_items.setdefault(k, it)
            if is_pos:
                keys.append(k)
                if ex.group is not None:
                    cand_groups[k] = ex.group
                else:
                    cand_groups.setdefault(k, None)
            else:
                cand_groups.setdefault(k, None)
        queries.append(q)
        qkeys.append(keys)
        qgroups.append(ex.group)
        tasks.append(ex.task)
    ckeys = list(cand_items)
    return ContrastiveBatch(queries, [cand_items[k] for k in ckeys], qkeys, qgroups, ckeys,
                            [cand_groups[k] for k in ckeys], tasks)


class MixtureSampler:
    """Draws batches from several example sources with weights; each source is walked in a shuffled order,
    reshuffled every epoch. ``homogeneous``: one task source per batch (else sources mix within a batch,
    VLM2Vec style). Its whole state (``state_dict``) is saved in checkpoints for exact resume."""

    def __init__(self, sources: Sequence[Sequence[Example]], weights: Sequence[float], batch_size: int,
                 seed: int = 0, homogeneous: bool = False):
        if len(sources) != len(weights) or not sources:
            raise ValueError("give one weight per source")
        self.sources = [list(s) for s in sources]
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("source weights must be >= 0 with a positive sum")
        self.weights = w / w.sum()
        self.batch_size, self.homogeneous = batch_size, homogeneous
        self.rng = np.random.default_rng(seed)
        self.perms = [self.rng.permutation(len(s)) for s in self.sources]
        self.cursors = [0] * len(self.sources)
        self.epochs = [0] * len(self.sources)

    def _take(self, s: int, n: int) -> list[Example]:
        out = []
        for _ in range(n):
            if self.cursors[s] >= len(self.perms[s]):
                self.perms[s] = self.rng.permutation(len(self.sources[s]))
                self.cursors[s] = 0
                self.epochs[s] += 1
            out.append(self.sources[s][self.perms[s][self.cursors[s]]])
            self.cursors[s] += 1
        return out

    def next_examples(self) -> list[Example]:
        if self.homogeneous:
            s = int(self.rng.choice(len(self.sources), p=self.weights))
            return self._take(s, self.batch_size)
        counts = self.rng.multinomial(self.batch_size, self.weights)
        out = []
        for s, c in enumerate(counts):
            out.extend(self._take(s, int(c)))
        return out

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "perms": [p.tolist() for p in self.perms],
                "cursors": list(self.cursors), "epochs": list(self.epochs)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.perms = [np.asarray(p, dtype=np.int64) for p in state["perms"]]
        self.cursors, self.epochs = list(state["cursors"]), list(state["epochs"])
