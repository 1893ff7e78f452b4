"""Training configuration (YAML or JSON file; every field has a default)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class DataSource:
    """One JSONL file of examples and its share of the batches."""

    path: str
    weight: float = 1.0
    name: str | None = None
    hard_negatives: int | None = None  # overrides TrainConfig.hard_negatives for this source
    query_regex: str | None = None  # keep only examples whose query text matches (re.search), e.g. one VQA type
    group_regex: str | None = None  # keep only examples whose group matches, e.g. ":class$" (box -> class pairs)

    def select(self, examples: list) -> list:
        """``examples`` of this source's file that :attr:`query_regex` and :attr:`group_regex` keep (all without
        either)."""
        for key, value in (("query_regex", lambda ex: ex.query.get("text")), ("group_regex", lambda ex: ex.group)):
            regex = getattr(self, key)
            if regex:
                examples = self._matching(examples, key, regex, value)
        return examples

    def _matching(self, examples: list, key: str, regex: str, value) -> list:
        import re

        try:
            pattern = re.compile(regex)
        except re.error as e:
            raise ValueError(f"data source {self.name or self.path}: {key} {regex!r} is not a "
                             f"valid regular expression ({e})") from None
        kept = [ex for ex in examples if pattern.search(str(value(ex) or ""))]
        if not kept:
            what = "query text" if key == "query_regex" else "group"
            raise ValueError(f"data source {self.name or self.path}: no example's {what} matches {key} "
                             f"{regex!r} ({len(examples)} examples in {self.path})")
        return kept


@dataclass
class TrainConfig:
    """Recipe of one training run.

    ``trainable``: parameter-name prefixes that train (None keeps the model config's list: the new
    projectors, region/location parts, type embeddings, head and temperature); add encoder layers, e.g.
    ``backbone.model.encoder.layer.5.``. ``lora``: ``{"r": 16, "alpha": 64, "target_modules": ["query", "value"]}``
    adds LoRA adapters to the backbone (:mod:`geovec.models.lora`; merged into its weights when saving; the old
    key ``targets`` is still read, with a DeprecationWarning). ``temperature``: InfoNCE
    temperature at start; ``learn_temperature`` trains it (clamped to [0.01, 1]).
    ``batch_size``: queries per step per process (the contrastive batch is this times the number of
    processes); ``chunk_size``: GradCache chunk (0 = no GradCache). ``hard_negatives``: explicit negatives
    per query taken from the data (-1 all). ``positives_per_query``: 0 = all listed positives.
    Dev evaluation (``eval_every``, ``eval_data_root``) runs the ``rsmeb-dev`` tasks of ``geovec bench`` through
    its runner (:class:`geovec.train.dev_eval.DevEvaluator`); ``eval_tasks`` picks some by name.
    """

    base_model: str = "geovec-compact-untrained"
    model_overrides: dict = field(default_factory=dict)  # model config fields for a fresh (untrained) base
    data: list[DataSource] = field(default_factory=list)
    output_dir: str = "runs/geovec-train"
    trainable: list[str] | None = None
    lora: dict | None = None
    temperature: float = 0.05
    learn_temperature: bool = True
    symmetric: bool = True
    batch_size: int = 64
    chunk_size: int = 0
    positives_per_query: int = 1
    hard_negatives: int = 0
    task_homogeneous: bool = False
    lr: float = 1e-3
    encoder_lr: float = 5e-5  # for pretrained encoder weights and LoRA
    weight_decay: float = 0.01
    warmup_steps: int = 50
    max_steps: int = 1000
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    feature_cache: str | None = None  # folder for cached frozen vision features (None: no cache)
    save_every: int = 100
    log_every: int = 10
    eval_every: int = 0  # dev evaluation every N steps (0 = only at the end); needs a data root
    eval_data_root: str | None = None
    eval_tasks: list[str] | None = None  # rsmeb-dev task (or suite) names to run; None = the whole rsmeb-dev suite
    eval_max_queries: int = 0  # subsample each dev task's queries to this many (seeded; 0 = all)
    eval_limit: int = 0  # deprecated: read as eval_max_queries when that is 0
    eval_mosaics: int | None = None  # deprecated, ignored: the rsmeb-dev suite fixes its mosaics
    num_threads: int | None = None
    revision: str | None = None  # written into the saved model's config.json
    text_cache: bool = True  # reuse pooled states of text-only inputs while their encoder path is frozen
    text_cache_file: str | None = None  # persist those states here (shared by runs with the same frozen text path)
    dropout: bool = False  # False: pretrained modules run in eval mode (no dropout) while training

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        d["data"] = [s if isinstance(s, DataSource) else DataSource(**({"path": s} if isinstance(s, str) else s))
                     for s in d.get("data", [])]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            d = yaml.safe_load(text) or {}
        else:
            d = json.loads(text)
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return asdict(self)
