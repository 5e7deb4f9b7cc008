"""`litllm finetune dpo` end to end on the built-in preference pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from litllm.cli import main
from litllm.model.model_dir import ModelDir
from litllm.model.templates import get_template

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sft_dir(tiny_model_dir) -> Path:
    """The tiny model directory as an SFT stage leaves it: with the template it was tuned with."""
    ModelDir(tiny_model_dir).save_template(get_template("alpaca"))
    return tiny_model_dir


@pytest.mark.parametrize("method", ["lora", "full"])
def test_dpo_raises_preference_accuracy_and_margin(sft_dir, tmp_path, method, logged):
    def metrics(root, key):
        return [value for _, value in logged(root, key)]

    root = tmp_path / "run"
    main(
        [
            "finetune",
            "dpo",
            "--config",
            str(REPO / "recipes" / "dpo_lora_tiny.yaml"),
            "--model.init_from",
            str(sft_dir),
            "--model.method",
            method,
            "--model.learning_rate",
            "5e-3",
            "--model.beta",
            "0.5",
            "--data.block_size",
            "256",
            "--data.max_length",
            "256",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--data.batch_size",
            "4",
            "--trainer.max_steps",
            "16",
            "--trainer.val_check_interval",
            "8",
            "--trainer.limit_val_batches",
            "4",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    accuracy, margin = metrics(root, "val/accuracy"), metrics(root, "val/reward_margin")
    assert len(accuracy) == 2 and accuracy[-1] > 0.6 and margin[-1] > 0
    assert metrics(root, "train/reward_chosen") and metrics(root, "val/reward_rejected")
    model, _ = ModelDir(root / "final").load()
    assert ModelDir(root / "final").template().name == "alpaca"
    assert (root / "adapter").exists() == (method == "lora")
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("reference_model") for k in ckpt["state_dict"])
