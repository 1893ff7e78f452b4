"""The shipped paper-scale recipe (configs/qwen2vl-2b-paper.yaml) runs end to end on the CPU: two gloo
processes under torchrun, GradCache, LoRA, bf16, with a tiny random-init Qwen2-VL in place of the 2B model.
Only the scale changes (backbone path, data, batch, steps); every other setting is the shipped one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import geovec

pytest.importorskip("geovec.train.run", reason="the training layer (geovec.train) is not installed")

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "qwen2vl-2b-paper.yaml"
MODEL = REPO / "configs" / "models" / "qwen2vl-2b" / "config.json"


def test_paper_recipe_is_the_paper_setting():
    cfg = yaml.safe_load(RECIPE.read_text())
    model = json.loads(MODEL.read_text())
    assert cfg["temperature"] == 0.02 and cfg["learn_temperature"] is False
    assert cfg["lr"] == cfg["encoder_lr"] == 5e-5 and cfg["chunk_size"] > 0
    assert cfg["batch_size"] * 8 == 1024  # per process on 8 GPUs
    assert model["architecture"] == "qwen2-vl" and model["backbone_path"] == "Qwen/Qwen2-VL-2B-Instruct"
    assert model["extra"]["lora"]["r"] == 16 and model["extra"]["lora"]["alpha"] == 64
    assert model["extra"]["dtype"] == "bfloat16" and model["pooling"] == "last" and model["embed_dim"] == 1536


@pytest.mark.timeout(600)
def test_paper_recipe_runs_on_two_cpu_processes(tmp_path, tiny_qwen2vl_dir, scene_png):
    # the model config as shipped, pointed at the tiny backbone
    model_cfg = json.loads(MODEL.read_text())
    model_cfg["backbone_path"] = str(tiny_qwen2vl_dir)
    model_cfg["embed_dim"] = 64
    model_cfg["extra"]["max_pixels"] = 56 * 56
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(model_cfg))

    rows = []
    for i in range(8):
        rows.append({"task": "retrieval", "query": {"image": str(scene_png), "box": [10 * i, 0, 10 * i + 40, 40]},
                     "positive": {"text": f"region number {i}"}})
        rows.append({"task": "geo", "query": {"lat": 10.0 * i - 40, "lon": 20.0 * i}, "positive": {"text": f"place {i}"}})
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    cfg = yaml.safe_load(RECIPE.read_text())
    cfg.update(base_model=str(base), data=[{"path": str(data)}], output_dir=str(tmp_path / "run"),
               batch_size=4, chunk_size=2, max_steps=2, warmup_steps=1, save_every=1, log_every=1)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "geovec.train.run", "--config", str(recipe), "--no-resume"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in log if r.get("kind") == "train"]
    assert steps and steps[-1]["step"] == 2
    assert steps[-1]["queries"] == 8  # 4 per process x 2 processes: one global contrastive batch
    assert abs(steps[-1]["temperature"] - 0.02) < 1e-6
    model = geovec.load_model(tmp_path / "run" / "model")
    assert model.config.architecture == "qwen2-vl"
    E = model.encode(["a harbor", {"lat": 1.0, "lon": 2.0}])
    assert np.isfinite(E).all()
