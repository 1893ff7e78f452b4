"""The names of the inference backends and precisions, and how a request for them is read (arguments, else
``$GEOVEC_BACKEND`` / ``$GEOVEC_PRECISION``). Without torch: the command line checks them before loading anything."""

from __future__ import annotations

import os

BACKENDS = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")


def requested(backend: str | None, precision: str | None) -> tuple[str, str]:
    """The backend and precision a load asks for, normalised (not yet checked: see :func:`requested_backend`)."""
    name = (backend or os.environ.get("GEOVEC_BACKEND") or "auto").strip().lower()
    return name, (precision or os.environ.get("GEOVEC_PRECISION") or "fp32").strip().lower()


def requested_backend(backend: str | None) -> str:
    name = requested(backend, None)[0]
    if name not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown backend {name!r}; choose one of {[*BACKENDS, 'auto']}")
    return name
