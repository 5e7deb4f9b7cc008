"""``litllm fit --trainer.strategy NAME``: litllm's short names reach Lightning, an unknown one is one line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import yaml
from process_runs import run_processes

from litllm.cli import main

pytestmark = pytest.mark.integration


def tiny_recipe(tmp: Path) -> Path:
    recipe = {
        "model": {
            "class_path": "litllm.train.PretrainModule",
            "init_args": {"arch": "tiny-gpt2", "arch_overrides": {"block_size": 32}, "warmup_steps": 1},
        },
        "data": {
            "class_path": "litllm.data.LLMDataModule",
            "init_args": {"vocab_size": 300, "block_size": 32, "batch_size": 4, "cache_dir": str(tmp / "cache")},
        },
        "trainer": {
            "max_steps": 3,
            "limit_val_batches": 0,
            "gradient_clip_val": 1.0,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp / "run"),
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}}
            ],
        },
    }
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_an_unknown_strategy_name_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(tiny_recipe(tmp_path)), "--trainer.strategy", "fsdp3"])
    assert exit_.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("INFO: Seed set")]
    assert len(err) == 1, err  # no traceback, no usage text
    assert err[0].startswith("litllm: error: trainer.strategy='fsdp3' is not a strategy name: litllm's are fsdp2")


def test_fit_with_fsdp2_on_two_cpu_processes(tmp_path):
    command = [sys.executable, "-m", "litllm.cli", "fit", "--config", str(tiny_recipe(tmp_path))]
    flags = ["--trainer.strategy", "fsdp2", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    run_processes([*command, *flags], tmp_path / "fit.log")
    run = tmp_path / "run"
    # Each process saved its own shard (FSDP2 over both), and the consolidated model directory was written.
    assert sorted(p.name for p in (run / "checkpoints" / "last.ckpt").glob("*.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    assert (run / "final" / "model.safetensors").is_file()
    with open(run / "logs" / "version_0" / "metrics.csv") as f:
        steps = {row["step"] for row in csv.DictReader(f) if row.get("train/loss")}
    assert len(steps) == 3
    # `--ckpt_path last` finds the sharded checkpoint directory and continues from its step.
    resume = ["--ckpt_path", "last", "--trainer.max_steps", "5"]
    output = run_processes([*command, *flags, *resume], tmp_path / "resume.log")
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'} (step 3)" in output
    with open(run / "logs" / "version_1" / "metrics.csv") as f:
        resumed = sorted(int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss"))
    assert resumed == [3, 4]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--trainer.devices", "2", "--model.init_args.optimizer", "muon"],
            "pipeline parallelism (pipeline_parallel_size=2) does not support model.optimizer=muon",
        ),
        (
            ["--trainer.devices", "3"],
            "the mesh data_parallel_size=auto x tensor_parallel_size=auto x pipeline_parallel_size=2 does not fit "
            "the run's 3 process(es)",
        ),
    ],
)
def test_what_a_pipeline_cannot_run_is_one_line_before_any_process_starts(tmp_path, capsys, flags, message):
    args = ["fit", "--config", str(tiny_recipe(tmp_path)), "--trainer.strategy", "pp2", "--trainer.accelerator", "cpu"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, *flags])
    assert exit_.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("INFO: Seed set")]
    assert len(err) == 1, err
    assert err[0].startswith(f"litllm: error: {message}")
