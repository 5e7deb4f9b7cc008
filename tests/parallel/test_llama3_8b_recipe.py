"""recipes/pretrain_llama3_8b.yaml, shrunk to a tiny width, on 2 CPU processes with its own strategy
(MeshStrategy, tensor_parallel_size 2): the recipe's settings run as written but for size, device and data."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_llama3_8b_recipe_runs_shrunk_under_tp2(tmp_path, small_tokenizer, shakespeare_path):
    recipe = yaml.safe_load((REPO / "recipes" / "pretrain_llama3_8b.yaml").read_text())
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
        devices=2,
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
    recipe["trainer"]["callbacks"][1]["init_args"]["max_new_tokens"] = 4
    path = tmp_path / "llama3_8b_tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "litllm.cli", "fit", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    run = tmp_path / "run"
    assert (run / "final" / "model.safetensors").is_file()
    with open(run / "logs" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len({r["step"] for r in rows if r.get("train/loss")}) == 4
    assert any(r.get("val/loss") for r in rows)
    config = yaml.safe_load((run / "logs" / "version_0" / "config.yaml").read_text())
    assert config["trainer"]["strategy"]["init_args"]["tensor_parallel_size"] == 2
    assert config["model"]["init_args"]["activation_checkpointing"] is True
