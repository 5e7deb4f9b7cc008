"""`litllm finetune full|lora|qlora` end to end on the built-in instruction data, from a tiny model directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from litllm.cli import main
from litllm.model.model_dir import ModelDir

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_dir(tiny_model_dir) -> Path:
    return tiny_model_dir


def args(method: str, base: Path, root: Path, steps: int, *extra: str) -> list[str]:
    return [
        "finetune",
        method,
        "--config",
        str(REPO / "recipes" / f"sft_{method}_tiny.yaml"),
        "--model.init_from",
        str(base),
        "--model.warmup_steps",
        "3",
        "--data.block_size",
        "256",
        "--data.max_length",
        "256",
        "--data.batch_size",
        "8",
        "--data.cache_dir",
        str(root.parent / "cache"),
        "--trainer.max_steps",
        str(steps),
        "--trainer.val_check_interval",
        str(steps // 2),
        "--trainer.limit_val_batches",
        "4",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.default_root_dir",
        str(root),
        *extra,
    ]


def validation_loss_of(model_dir: Path, cache: Path) -> float:
    """The starting model's loss on the same validation batches the runs use (4 batches of 8)."""
    from litllm.data import LLMDataModule
    from litllm.train.pretrain import next_token_loss

    dm = LLMDataModule(
        mode="sft",
        train_data="instructions",
        tokenizer=str(model_dir),
        block_size=256,
        batch_size=8,
        cache_dir=str(cache),
    )
    dm.prepare_data()
    dm.setup("fit")
    model, _ = ModelDir(model_dir).load()
    total = count = 0
    with torch.no_grad():
        for i, batch in enumerate(dm.val_dataloader()):
            if i == 4:
                break
            n = (batch["labels"] != -100).sum().item()
            total += next_token_loss(model(batch["input_ids"]), batch["labels"]).item() * n
            count += n
    return total / count


@pytest.mark.parametrize("method", ["lora", "qlora"])
@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_adapter_finetuning_lowers_validation_loss_and_exports(
    method, style, tiny_model_dir, tiny_gpt2_model_dir, tmp_path, logged
):
    base_dir = tiny_model_dir if style == "llama" else tiny_gpt2_model_dir
    root = tmp_path / "run"
    main(
        args(
            method,
            base_dir,
            root,
            20,
            "--model.learning_rate",
            "2e-2",
            "--model.lora_targets",
            "[qkv, proj, up, down, lm_head]",
        )
    )
    losses = logged(root, "val/loss")
    before = validation_loss_of(base_dir, root.parent / "cache")
    assert len(losses) == 2 and losses[-1][1] < before - 0.5
    assert (root / "adapter" / "adapter_config.json").is_file()
    assert (root / "adapter" / "adapter_model.safetensors").is_file()
    merged, tokenizer = ModelDir(root / "final").load()
    assert ModelDir(root / "final").template().name == "alpaca"
    base, _ = ModelDir(base_dir).load()
    assert not torch.equal(merged.blocks[0].attn.qkv.weight, base.blocks[0].attn.qkv.weight)  # adapter merged in
    assert torch.equal(merged.wte.weight, base.wte.weight)  # untargeted weights unchanged
    ckpt = (root / "checkpoints" / "last.ckpt").stat().st_size
    assert ckpt < ModelDir(base_dir).weights_file.stat().st_size  # the checkpoint holds the adapter only


def test_lora_run_resumes_from_its_checkpoint(base_dir, tmp_path, logged):
    root = tmp_path / "run"
    main(args("lora", base_dir, root, 10))
    saved = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 10 and all("lora_" in k for k in saved["state_dict"])
    main(args("lora", base_dir, root, 20, "--ckpt_path", "last"))
    resumed = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 20
    key = next(k for k in saved["state_dict"] if "lora_B" in k)
    assert not torch.equal(saved["state_dict"][key], resumed["state_dict"][key])  # training went on
    steps = [s for s, _ in logged(root, "val/loss")]
    assert steps[:2] == [4, 9] and len(steps) >= 3 and all(s > 10 for s in steps[2:])  # the second run went on from 10


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_full_finetuning_writes_a_complete_model(style, tiny_model_dir, tiny_gpt2_model_dir, tmp_path):
    base_dir = tiny_model_dir if style == "llama" else tiny_gpt2_model_dir
    root = tmp_path / "run"
    main(args("full", base_dir, root, 6))
    model, _ = ModelDir(root / "final").load()
    base, _ = ModelDir(base_dir).load()
    assert not torch.equal(model.wte.weight, base.wte.weight)
    assert not (root / "adapter").exists()


def test_verb_sets_the_method(base_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                *args("full", base_dir, tmp_path / "run", 4)[:2],
                "--config",
                str(REPO / "recipes" / "sft_lora_tiny.yaml"),
                "--print_config",
            ]
        )
    printed = capsys.readouterr().out
    assert "method: full" in printed and "mode: sft" in printed


def test_124m_lora_recipe_runs_shrunk_on_cpu(base_dir, tmp_path):
    """The GPU recipe with the CPU as device, the tiny model directory and two steps."""
    root = tmp_path / "run"
    main(
        [
            "finetune",
            "lora",
            "--config",
            str(REPO / "recipes" / "sft_lora_124m.yaml"),
            "--model.init_from",
            str(base_dir),
            "--data.block_size",
            "256",
            "--data.max_length",
            "256",
            "--data.num_workers",
            "0",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.accelerator",
            "cpu",
            "--trainer.precision",
            "bf16-mixed",
            "--trainer.max_epochs",
            "1",
            "--trainer.max_steps",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.val_check_interval",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    assert (root / "adapter" / "adapter_model.safetensors").is_file() and (root / "final" / "template.json").is_file()
