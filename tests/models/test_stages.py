"""The model's exportable steps as slots (geovec.models.stages): what each step computes with, what an export of it
traces, and that a step reads its modules when it runs (head_init and LoRA replace modules after loading)."""

from __future__ import annotations

import pytest
import torch

import geovec
from geovec.models.stages import Stage


@pytest.fixture(scope="module")
def torch_model():
    return geovec.load_model(backend="torch")


def test_the_default_declares_its_exportable_stages(torch_model):
    stages = torch_model.torch_stages()
    exported = {g for g, s in stages.items() if s.graph is not None}
    assert exported == {"vision", "location", "encoder", "head", "global_text"}
    assert stages["encoder_text"].graph is None  # derived from the encoder graph, not exported itself
    m = torch_model
    assert stages["global_text"].modules == (m.backbone, m.global_text_top)
    assert all(isinstance(s, Stage) for s in m.stages.values()) and m.backend == "torch" and m.runner is None


def test_a_stage_and_the_module_an_export_traces_compute_the_same(torch_model):
    m = torch_model
    with torch.no_grad():
        for name, stage in m.torch_stages().items():
            if stage.graph is None:
                continue
            args = stage.example()
            torch.testing.assert_close(stage(*args), stage.graph(*args), rtol=0, atol=0, msg=name)


def test_a_stage_reads_its_module_when_called(torch_model):
    enc = torch_model.encoder  # the dual-path model's slots are its encoder half's
    pooled = torch.randn(3, enc.backbone.hidden_size)
    head = enc.head
    with torch.no_grad():
        torch.testing.assert_close(enc.project(pooled), head(pooled))
        enc.head = torch.nn.Identity()  # what head_init does to a loaded model
        try:
            torch.testing.assert_close(enc.project(pooled), pooled)
            torch.testing.assert_close(torch_model.stages["head"](pooled), pooled)
        finally:
            enc.head = head
