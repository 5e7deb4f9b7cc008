"""Pretraining with Muon and the warmup-stable-decay schedule, stopped at a checkpoint and resumed: the
losses and learning rates are those of the run never stopped (the optimizer's two states and the
schedule's position travel in the checkpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from litllm.cli import main

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def recipe(tmp: Path) -> str:
    """The Shakespeare recipe checkpointing every 4 steps, without samples (list items cannot be set by flags)."""
    config = yaml.safe_load((REPO / "recipes" / "pretrain_shakespeare.yaml").read_text())
    callbacks = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("ModelCheckpoint")]
    callbacks[0]["init_args"].update(every_n_train_steps=4, monitor=None, save_top_k=-1)
    config["trainer"]["callbacks"] = callbacks
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run(config: str, tokenizer: Path, root: Path, cache: Path, steps: int, *extra: str) -> None:
    main(
        [
            "fit", "--config", config, "--model.arch", "tiny-gpt2", "--model.arch_overrides",
            "{block_size: 32, dropout: 0.1}", "--model.optimizer", "muon", "--model.lr_schedule", "wsd",
            "--model.decay_fraction", "0.5", "--model.max_steps", "8", "--model.warmup_steps", "2",
            "--data.tokenizer", str(tokenizer), "--data.block_size", "32", "--data.batch_size", "4",
            "--data.cache_dir", str(cache), "--trainer.max_steps", str(steps), "--trainer.val_check_interval", "4",
            "--trainer.limit_val_batches", "2", "--trainer.log_every_n_steps", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(root), *extra,
        ]
    )  # fmt: skip


def test_muon_wsd_run_resumes_exactly(tmp_path, small_tokenizer, logged):
    config, tok, cache = recipe(tmp_path), small_tokenizer.path, tmp_path / "cache"
    run(config, tok, tmp_path / "whole", cache, 8)
    run(config, tok, tmp_path / "stopped", cache, 4)  # as if killed after the checkpoint of step 4
    run(config, tok, tmp_path / "stopped", cache, 8, "--ckpt_path", "last")
    for key in ("train/loss", "train/lr"):
        whole = dict(logged(tmp_path / "whole", key))
        resumed = {step: value for step, value in logged(tmp_path / "stopped", key) if step >= 4}
        assert sorted(resumed) == [s for s in sorted(whole) if s >= 4], key
        for step, value in resumed.items():
            assert value == whole[step], (key, step, value, whole[step])
    lrs = dict(logged(tmp_path / "whole", "train/lr"))
    assert lrs[2] == lrs[3] > lrs[5] > lrs[7]  # stable, then decaying over the last half
