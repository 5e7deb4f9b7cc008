"""Stop a finetuning run at a checkpoint and resume it: the losses are those of a run never stopped.

What a ``kill -9`` leaves is the last periodic checkpoint; resuming from it must not change the run,
dropout (in the base model and on the LoRA branch) included. Each method runs on the GPT-2-style base
(biases, LayerNorm, learned positions, tied head, dropout 0.1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from litllm.cli import main
from litllm.model.model_dir import ModelDir
from litllm.model.templates import get_template

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
RECIPES = {"full": "sft_full_tiny", "lora": "sft_lora_tiny", "qlora": "sft_qlora_tiny", "dpo": "dpo_lora_tiny"}


def run(verb: str, method: str, base: Path, root: Path, steps: int, *extra: str) -> None:
    main(
        [
            "finetune", verb, "--config", str(REPO / "recipes" / f"{RECIPES[verb]}.yaml"),
            "--model.init_from", str(base), "--model.max_steps", "8", "--model.warmup_steps", "2",
            "--model.lora_dropout", "0.1", "--data.block_size", "256", "--data.max_length", "256",
            "--data.batch_size", "4", "--data.cache_dir", str(root.parent / "cache"),
            "--trainer.max_steps", str(steps), "--trainer.val_check_interval", "4", "--trainer.limit_val_batches", "2",
            "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(root),
            *(["--model.method", method] if verb == "dpo" else []), *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("verb", "method"), [("full", "full"), ("lora", "lora"), ("qlora", "qlora"), ("dpo", "full"), ("dpo", "lora")]
)
def test_resumed_finetuning_matches_an_unbroken_run(verb, method, tiny_gpt2_model_dir, tmp_path, logged):
    base = tiny_gpt2_model_dir
    if verb == "dpo":
        ModelDir(base).save_template(get_template("alpaca"))
    run(verb, method, base, tmp_path / "whole", 8)
    run(verb, method, base, tmp_path / "stopped", 5)  # as if killed after the checkpoint of step 5
    run(verb, method, base, tmp_path / "stopped", 8, "--ckpt_path", "last")
    whole = dict(logged(tmp_path / "whole", "train/loss"))
    resumed = {step: loss for step, loss in logged(tmp_path / "stopped", "train/loss") if step >= 5}
    assert sorted(resumed) == [s for s in sorted(whole) if s >= 5]
    for step, loss in resumed.items():
        assert loss == whole[step], (step, loss, whole[step])
