"""The two small files that make a geovec model directory a sentence-transformers model directory
(``modules.json``, ``config_sentence_transformers.json``); writing them needs no sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODULE_TYPE = "geovec.integrations.sentence_transformers.GeoVecModule"


def sentence_transformers_config(model: Any) -> dict[str, Any]:
    """``config_sentence_transformers.json`` of a geovec model: its named prompts and cosine similarity."""
    import geovec

    versions = {"geovec": geovec.__version__}
    try:
        import sentence_transformers

        versions["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return {"model_type": "SentenceTransformer", "__version__": versions, "prompts": dict(model.prompts),
            "default_prompt_name": None, "similarity_fn_name": "cosine"}


def write_sentence_transformers_files(model: Any, directory: str | Path) -> None:
    """Write ``modules.json`` and ``config_sentence_transformers.json`` into a geovec model directory, so that
    ``SentenceTransformer(directory, trust_remote_code=True)`` loads it (sentence-transformers itself is not
    needed for this)."""
    directory = Path(directory)
    modules = [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPE}]
    (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (directory / "config_sentence_transformers.json").write_text(
        json.dumps(sentence_transformers_config(model), indent=2, sort_keys=True) + "\n")
