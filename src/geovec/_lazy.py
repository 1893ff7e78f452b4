"""Lazy package exports (PEP 562): a package names its public objects and the module each lives in, and each is
imported on first use. So ``import geovec`` and the ``geovec`` command's ``--version`` / ``--help`` (which import
every layer's ``cli`` module, and with it its package) do not import torch, pyarrow or the dataset readers."""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose name ``exports[name]`` lives in that module."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # cached: the next access is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
