"""A model's exportable steps as slots: the forward pass calls ``self.stages[name](...)`` and never asks what runs it.

Out of the box every slot holds the torch step (:meth:`StagedModel.torch_stages`). A runtime
(:mod:`geovec.runtime.backends`) may put graph-backed steps in some slots once, when the model is loaded, as
sentence-transformers swaps its modules for an ONNX or OpenVINO backend; :meth:`StagedModel.use_stages` with
nothing gives torch back. The graph-backed steps keep torch as their fallback (gradients, training, weights
changed since the graphs were attached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Stage:
    """One step of the forward pass in torch.

    ``run``: the step as the forward pass calls it; ``graph``: the same computation as one module, which an
    export traces (None: the step is not exported itself, e.g. ``encoder_text``, derived from ``encoder``);
    ``modules``: whose weights it computes with (a graph of it is stale once any of them changes);
    ``example``: example inputs for the export."""

    run: Callable[..., torch.Tensor]
    modules: tuple[nn.Module, ...]
    graph: nn.Module | None = None
    example: Callable[[], tuple[torch.Tensor, ...]] | None = None

    def __call__(self, *args: Any) -> torch.Tensor:
        return self.run(*args)


class StagedModel:
    """Mixin for a model whose forward pass goes through :attr:`stages`."""

    runner = None  # what runs the graph-backed stages (a geovec.runtime runner); None: every stage in torch

    def torch_stages(self) -> dict[str, Stage]:
        raise NotImplementedError

    @property
    def stages(self) -> dict[str, Callable[..., torch.Tensor]]:
        stages = self.__dict__.get("_stages")
        if stages is None:
            stages = self.__dict__["_stages"] = self.torch_stages()
        return stages

    def use_stages(self, stages: dict[str, Callable[..., torch.Tensor]] | None = None, runner=None) -> None:
        """Run ``stages`` in place of the torch ones of the same names, ``runner`` naming what runs them; without
        arguments, every stage in torch again."""
        self.__dict__["_stages"] = {**self.torch_stages(), **(stages or {})}
        self.__dict__["runner"] = runner if stages is not None else None

    @property
    def backend(self) -> str:
        """``torch``, or the attached backend (``onnx``, ``openvino``, ``openvino-bf16``, ``onnx-int8``)."""
        return self.runner.label if self.runner is not None else "torch"
