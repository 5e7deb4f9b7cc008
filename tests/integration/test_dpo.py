"""`litllm finetune dpo` end to end on the built-in preference pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from litllm.checkpoint import load_model_dir, save_model_dir
from litllm.cli import main
from litllm.config import ModelConfig
from litllm.data.templates import get_template, load_template, save_template
from litllm.model import GPT

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory, small_tokenizer) -> Path:
    torch.manual_seed(0)
    model = GPT(
        ModelConfig.from_name("tiny-llama", block_size=256, n_embd=128, n_head=4, n_kv_head=2, intermediate_size=256)
    )
    directory = save_model_dir(tmp_path_factory.mktemp("sft") / "model", model, small_tokenizer)
    save_template(get_template("alpaca"), directory)
    return directory


def metrics(root: Path, key: str) -> list[float]:
    out = []
    for path in sorted((root / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            out += [float(r[key]) for r in csv.DictReader(f) if r.get(key)]
    return out


@pytest.mark.parametrize("method", ["lora", "full"])
def test_dpo_raises_preference_accuracy_and_margin(sft_dir, tmp_path, method):
    root = tmp_path / "run"
    main(
        [
            "finetune",
            "dpo",
            "--config",
            str(REPO / "recipes" / "dpo_lora_tiny.yaml"),
            "--model.checkpoint",
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
    model, _ = load_model_dir(root / "final")
    assert load_template(root / "final").name == "alpaca"
    assert (root / "adapter").exists() == (method == "lora")
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("reference_model") for k in ckpt["state_dict"])
