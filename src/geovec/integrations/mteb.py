"""geovec models for MTEB / MIEB: an encoder wrapper (mteb's ``AbsEncoder`` / encoder protocol) and its ``ModelMeta``.

    import mteb
    from geovec.integrations.mteb import GeoVecEncoder

    model = GeoVecEncoder()                                  # the bundled model; or GeoVecEncoder("path/to/ckpt")
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["RESISC45"]))

    meta = geovec_model_meta()                               # or mteb.evaluate(meta, tasks): meta.load_model()

Every row mteb hands over (``text``, ``image`` or both) becomes one geovec item; the instruction follows the task
and the prompt type: queries of retrieval tasks get the model's retrieval query instruction, documents the
generic candidate instruction naming their modalities, classification / clustering inputs the scene
classification instruction (see :data:`MTEB_PROMPTS`; ``model_prompts=`` overrides it, with geovec prompt names or
literal instructions, keyed as mteb keys them: task name, task type, ``query`` / ``document``, or
``"<task or type>-<query|document>"``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
from mteb.models.model_meta import ModelMeta, ScoringFunction

# mteb task types / prompt types -> geovec prompt names (EmbeddingModel.prompts)
MTEB_PROMPTS: dict[str, str] = {
    "query": "query",
    "document": "document",
    "Classification": "classification",
    "MultilabelClassification": "classification",
    "ZeroShotClassification-query": "classification",
    "ZeroShotClassification-document": "document",
    "Clustering": "classification",
    "Any2AnyRetrieval-query": "query",
    "Retrieval-query": "query",
    "Reranking-query": "query",
}
DEFAULT_PROMPT = "document"  # symmetric tasks (STS, pair classification, bitext): the generic instruction


def _release_date(revision: str | None) -> str | None:
    m = re.search(r"(\d{4}-\d{2}-\d{2})", revision or "")
    return m.group(1) if m else None


def geovec_model_meta(model: Any = None, name: str | None = None) -> ModelMeta:
    """mteb's ``ModelMeta`` of a geovec model (default: the bundled one), as mteb writes it into result folders.
    ``name`` defaults to ``geovec/<model id>`` (mteb names models ``organization/model``)."""
    if model is None:
        import geovec

        model = geovec.load_model()
    counts = model.parameter_counts() if callable(getattr(model, "parameter_counts", None)) else {}
    n_params = int(counts["total"]) if counts.get("total") else sum(p.numel() for p in model.parameters())
    return ModelMeta(
        loader=geovec_loader,
        loader_kwargs={},
        name=name or f"geovec/{model.model_id}",
        revision=model.revision,
        release_date=_release_date(model.revision),
        languages=["eng-Latn"],
        n_parameters=n_params,
        memory_usage_mb=round(n_params * 4 / 2**20, 1),
        max_tokens=getattr(model.config, "max_text_tokens", None),
        embed_dim=int(model.embed_dim),
        license="apache-2.0",
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch", "Sentence Transformers"],
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=set(),  # RSICD, its mosaics and RSVQA scenes: none of them is an mteb task
        modalities=["image", "text"],
        model_type=["dense"],
    )


class GeoVecEncoder(AbsEncoder):
    """A geovec model behind mteb's encoder protocol (``encode(inputs, *, task_metadata, hf_split, hf_subset,
    prompt_type)``). ``model``: a loaded geovec model, else ``model_name_or_path`` is loaded (default: bundled)."""

    def __init__(self, model_name_or_path: str | None = None, revision: str | None = None, *,
                 device: str | None = None, model: Any = None, model_prompts: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        if model is None:
            import geovec

            name = model_name_or_path
            if name is not None and str(name).startswith("geovec/"):
                name = str(name).split("/", 1)[1]  # mteb's "geovec/<model id>" -> the bundled name
            model = geovec.load_model(name, device=device)
        self.model = model
        self.model_prompts = {**MTEB_PROMPTS, **(model_prompts or {})}
        self.mteb_model_meta = geovec_model_meta(model)

    def instruction_for(self, task_metadata, prompt_type) -> tuple[str | None, str | None]:
        """(geovec prompt name, literal instruction) for a task and prompt type: one of them is set."""
        key = get_prompt_name(self.model_prompts, task_metadata, prompt_type)
        value = self.model_prompts[key] if key is not None else DEFAULT_PROMPT
        return (value, None) if value in self.model.prompts else (None, value)

    @staticmethod
    def rows_to_items(batch: dict[str, Any]) -> list[dict[str, Any]]:
        """One geovec item per row of an mteb batch: its text and / or its image (PIL)."""
        texts, images = batch.get("text"), batch.get("image")
        n = len(texts if texts is not None else images if images is not None else [])
        items = []
        for j in range(n):
            item: dict[str, Any] = {}
            if images is not None and images[j] is not None:
                item["image"] = images[j]
            if texts is not None and isinstance(texts[j], str) and texts[j].strip():
                item["text"] = texts[j]
            if not item:
                raise ValueError(f"mteb row {j} has neither text nor an image (columns {sorted(batch)})")
            items.append(item)
        return items

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type=None,
               **kwargs: Any) -> np.ndarray:
        prompt_name, prompt = self.instruction_for(task_metadata, prompt_type)
        batch_size = int(kwargs.get("batch_size") or 32)
        show = bool(kwargs.get("show_progress_bar", False))
        out = []
        batches = inputs
        if show:
            from tqdm.auto import tqdm

            batches = tqdm(inputs, desc=f"geovec {task_metadata.name}", unit="batch")
        for batch in batches:
            items = self.rows_to_items(batch)
            out.append(self.model.encode(items, prompt_name=prompt_name, prompt=prompt, batch_size=batch_size,
                                         show_progress_bar=False))
        if not out:
            return np.zeros((0, int(self.model.embed_dim)), dtype=np.float32)
        return np.concatenate(out)


def geovec_loader(model_name: str, revision: str | None = None, **kwargs: Any) -> GeoVecEncoder:
    """The ``loader`` of :func:`geovec_model_meta` (``meta.load_model()``): ``geovec/<name>`` is a bundled
    model, anything else a name or checkpoint directory for :func:`geovec.load_model`."""
    return GeoVecEncoder(model_name, revision, **kwargs)
