"""What a task builder returns: queries, candidates and the gold candidates of every query."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


@dataclass
class BuildContext:
    """Where builders read data (``data_root``) and keep what they build (``cache_dir``); ``seed`` fixes
    every random choice of a constructed task."""

    data_root: Path
    cache_dir: Path
    seed: int = 0

    def __post_init__(self):
        self.data_root = Path(self.data_root)
        self.cache_dir = Path(self.cache_dir)


@dataclass
class TaskData:
    """One ranking task, ready to embed.

    ``queries`` / ``candidates``: geovec item dicts (keys ``image, text, box, lat, lon``), without instruction
    (the runner adds the model's instruction for the task kind). ``gold[q]``: indices of the correct candidates.
    ``query_groups`` / ``candidate_groups``: when set, a query is ranked only against the candidates of its own
    group (protocol restriction, e.g. the answers of its question type). ``within_groups``: an extra pair of
    group labels for a *second* report "within group" (e.g. the regions of the query's own mosaic).
    ``exclude[q]``: a candidate index never ranked for query q (the query itself in region <-> region).
    ``query_labels``: per-query label for a per-label breakdown of P@1 (e.g. question type).
    ``query_latlon`` / ``candidate_latlon``: (N, 2) (lat, lon) degrees for distance metrics.
    """

    queries: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    gold: list[list[int]]
    query_groups: Sequence | None = None
    candidate_groups: Sequence | None = None
    within_groups: tuple[Sequence, Sequence] | None = None
    exclude: Sequence[int | None] | None = None
    query_labels: Sequence[str] | None = None
    query_latlon: np.ndarray | None = None
    candidate_latlon: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.gold) != len(self.queries):
            raise ValueError(f"{len(self.queries)} queries but {len(self.gold)} gold lists")
        if not self.queries or not self.candidates:
            raise ValueError("a task needs at least one query and one candidate")
