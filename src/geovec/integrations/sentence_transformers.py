"""geovec models as sentence-transformers models: a custom input module, :class:`GeoVecModule`.

A geovec model directory carries ``modules.json`` and ``config_sentence_transformers.json`` (the bundled model
does, and :func:`geovec.models.checkpoint.save_trained` writes them), so::

    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer("path/to/geovec-model", trust_remote_code=True)   # trust: the module is geovec's code

loads it; for any directory, or a model already in memory, the one-line adapter is::

    st = geovec.integrations.sentence_transformers.to_sentence_transformer("path/to/geovec-model")

``st.encode`` takes geovec items (text, images, ``{"image": ..., "box": [...]}``, ``{"lat": ..., "lon": ...}``,
any mix) and gives the same vectors as ``geovec_model.encode``; ``prompt_name`` picks the model's named prompts
(each task kind, ``"query"``, ``"document"``) and ``encode_query`` / ``encode_document`` use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from sentence_transformers.base.modules.input_module import InputModule

from geovec.integrations.sentence_transformers_files import MODULE_TYPE, sentence_transformers_config, write_sentence_transformers_files  # noqa: F401
from geovec.models.base import embed_batch
from geovec.models.instructions import call_instruction


class GeoVecModule(InputModule):
    """The whole geovec model as one sentence-transformers input module: ``preprocess`` parses, instructs and
    prepares the items (decode, resize, boxes; the instruction from the prompt), ``forward`` embeds them
    (``sentence_embedding``): the two halves of :meth:`geovec.EmbeddingModel.encode`'s loop."""

    save_in_root = True
    config_keys: list[str] = []

    def __init__(self, model: Any = None, model_name_or_path: str | Path | None = None, backend: str | None = None):
        super().__init__()
        if model is None:
            import geovec

            model = geovec.load_model(model_name_or_path, backend=backend)
        self.geovec_model = model

    @property
    def modalities(self) -> list:
        # "message": a batch mixing text, images and other items is one geovec call, not a chat
        return ["text", "image", "message"]

    @property
    def max_seq_length(self) -> int | None:
        return getattr(self.geovec_model.config, "max_text_tokens", None)

    @property
    def tokenizer(self):  # what sentence-transformers reads for model cards and max lengths
        backbone = getattr(self.geovec_model, "backbone", None)
        return getattr(backbone, "tokenizer", None) or getattr(self.geovec_model, "tokenizer", None)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.geovec_model.embed_dim)

    get_embedding_dimension = get_sentence_embedding_dimension

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   **kwargs) -> dict[str, Any]:
        # sentence-transformers' task ("query" / "document") and prompt read as geovec's encode reads them
        m = self.geovec_model
        task, side, instruction = call_instruction(m, task=task, prompt=prompt or None)
        return {"geovec_prepared": m.prepare_batch(inputs, task=task, side=side, instruction=instruction)}

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        # L2-normalised, as geovec's encode returns them
        features["sentence_embedding"] = embed_batch(self.geovec_model, features["geovec_prepared"])
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        from geovec.models.checkpoint import save_trained

        save_trained(self.geovec_model, output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             backend: str | None = None, **kwargs) -> "GeoVecModule":
        path = cls.load_dir_path(model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder,
                                 revision=revision, local_files_only=local_files_only)
        return cls(model_name_or_path=path, backend=backend)


def to_sentence_transformer(model: Any = None, **kwargs):
    """A :class:`sentence_transformers.SentenceTransformer` around a geovec model: a name, a checkpoint
    directory or a loaded model (default: the bundled model). ``kwargs`` go to ``SentenceTransformer``."""
    from sentence_transformers import SentenceTransformer

    if model is None or isinstance(model, (str, Path)):
        module = GeoVecModule(model_name_or_path=model, backend=kwargs.pop("backend", None))
    else:
        module = GeoVecModule(model)
    kwargs.setdefault("device", str(module.geovec_model.device))
    config = sentence_transformers_config(module.geovec_model)
    kwargs.setdefault("prompts", config["prompts"])
    kwargs.setdefault("similarity_fn_name", "cosine")
    return SentenceTransformer(modules=[module], **kwargs)
