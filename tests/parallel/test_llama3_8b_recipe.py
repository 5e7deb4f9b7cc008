"""The Llama-3 8B recipes, shrunk to a tiny width, with their own strategies: recipes/pretrain_llama3_8b.yaml
(MeshStrategy, tensor_parallel_size 2) on 2 CPU processes and recipes/pretrain_llama_8b_3d.yaml (pipeline 2 x
tensor 2) on 4; the recipes' settings run as written but for size, device, data and micro-batches."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import yaml
from process_runs import run_processes

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "devices", "pipeline"), [("pretrain_llama3_8b", 2, 1), ("pretrain_llama_8b_3d", 4, 2)]
)
def test_llama3_8b_recipe_runs_shrunk(tmp_path, small_tokenizer, shakespeare_path, name, devices, pipeline):
    recipe = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    model = recipe["model"]["init_args"]
    model.update(
        arch_overrides={
            "n_layer": 2,
            "n_embd": 64,
            "n_head": 4,
            "n_kv_head": 2,
            "intermediate_size": 128,
            "block_size": 64,
            "vocab_size": 512,
        },
        warmup_steps=1,
        max_steps=4,
    )
    data = recipe["data"]["init_args"]
    data.update(
        train_data=str(shakespeare_path),
        streaming=False,
        tokenizer=str(small_tokenizer.path),
        block_size=64,
        batch_size=2,
        num_workers=0,
        cache_dir=str(tmp_path / "cache"),
        dataset_config=None,
    )
    recipe["trainer"].update(
        accelerator="cpu",
        devices=devices,
        num_nodes=1,
        precision="32-true",
        max_steps=4,
        accumulate_grad_batches=2,
        val_check_interval=8,
        limit_val_batches=2,
        log_every_n_steps=1,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path / "run"),
    )
    for callback in recipe["trainer"]["callbacks"]:
        if callback["class_path"].endswith("SampleGeneration"):
            callback["init_args"]["max_new_tokens"] = 4
    strategy = recipe["trainer"]["strategy"]["init_args"]
    assert strategy.get("pipeline_parallel_size", 1) == pipeline
    if pipeline > 1:
        strategy["pipeline_microbatches"] = 2  # of the shrunk batch of 2
    path = tmp_path / "llama3_8b_tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run_processes([sys.executable, "-m", "litllm.cli", "fit", "--config", str(path)], tmp_path / "run.log")
    run = tmp_path / "run"
    assert (run / "final" / "model.safetensors").is_file()
    with open(run / "logs" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len({r["step"] for r in rows if r.get("train/loss")}) == 4
    assert any(r.get("val/loss") for r in rows)
    # one data-parallel replica: the processes share each batch, tokens are counted once
    speed = [r for r in rows if r.get("speed/tokens_per_sec")]
    per_device = [
        float(r["speed/tokens_per_sec_per_device"]) * devices / float(r["speed/tokens_per_sec"]) for r in speed
    ]
    assert speed and per_device == pytest.approx([1.0] * len(speed))
    config = yaml.safe_load((run / "logs" / "version_0" / "config.yaml").read_text())
    assert config["trainer"]["strategy"]["init_args"]["tensor_parallel_size"] == 2
    assert config["trainer"]["strategy"]["init_args"]["pipeline_parallel_size"] == pipeline
    assert config["model"]["init_args"]["activation_checkpointing"] is True
