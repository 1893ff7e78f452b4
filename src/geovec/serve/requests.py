"""The request bodies of ``POST /v1/embeddings`` and ``POST /search``: strict (NaN, Infinity and lone surrogates are a
422 naming the field, never a 500)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _strict_str(value: Optional[str]) -> Optional[str]:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (it holds a lone surrogate)") from None
    return value


class _Strict(BaseModel):
    # NaN / Infinity / 1e309 in a number field are a 422 naming the field, never a 500
    model_config = ConfigDict(allow_inf_nan=False)


class EmbeddingRequest(_Strict):
    """OpenAI's embeddings request, plus geovec's ``instruction`` / ``task`` / ``side`` extensions."""

    input: Any
    model: Optional[str] = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = None
    user: Optional[str] = None
    instruction: Optional[str] = None
    task: Optional[Literal["classification", "retrieval", "composed", "vqa", "region", "referring", "geo"]] = None
    side: Literal["query", "document"] = "query"
    normalize: bool = True
    truncate: bool = False  # embed the first tokens of a text longer than the model reads, instead of a 400

    _check_strings = field_validator("model", "user", "instruction")(_strict_str)


class Near(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SearchRequest(_Strict):
    text: Optional[str] = None
    image: Any = None
    box: Optional[list[float]] = Field(None, min_length=4, max_length=4)
    near: Optional[Near] = None
    within_km: Optional[float] = Field(None, gt=0)
    bbox: Optional[list[float]] = Field(None, min_length=4, max_length=4)
    k: int = Field(10, ge=1)
    instruction: Optional[str] = None
    exact: bool = False
    like: Optional[str] = Field(None, min_length=1, max_length=8192)  # a chip id: search with its stored vector
    heatmap: bool = False  # also every chip's score, quantised (the map's similarity layer)

    _check_strings = field_validator("text", "instruction", "like")(_strict_str)
