"""Full SFT and full DPO under tensor parallelism (tp2, 2 CPU processes), LoRA SFT and LoRA DPO under tp2 and
FSDP2, and full and LoRA SFT and DPO under pipeline parallelism (pp2: padded batches whose micro-batches hold
different numbers of labelled tokens; DPO's micro-batches of whole pairs), give one process's losses and exported
models; the tp2 checkpoints of LoRA SFT and full DPO continue in one process as the one-process ones do.

QLoRA refuses tensor parallelism in one line (``litllm.parallel.tensor``); full DPO's frozen reference is built
and split like the policy (FSDP2 modules cannot be deep-copied)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch
from process_runs import run_processes

from litllm.cli import main
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.train.distributed import QLORA_REFUSED

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def losses(root: Path, key: str = "train/loss") -> list[float]:
    rows = []
    for path in sorted((root / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return [float(r[key]) for r in rows if r.get(key)]


SEQUENCE_PARALLEL = (
    "--trainer.strategy.class_path",
    "litllm.parallel.MeshStrategy",
    "--trainer.strategy.init_args.tensor_parallel_size",
    "2",
    "--trainer.strategy.init_args.sequence_parallel",
    "true",
)
STRATEGY_ARGS = {"tp2-sp": SEQUENCE_PARALLEL}
"""The command-line arguments of a strategy that has no short name (the others: ``--trainer.strategy NAME``)."""


def finetune(
    verb: str,
    recipe: str,
    init_from: Path,
    root: Path,
    cache: Path,
    devices: int,
    strategy: str = "tp2",
    extra: tuple[str, ...] = (),
) -> None:
    """One process in this one (as the other integration tests run), two as a subprocess (never DDP in pytest)."""
    args = ["finetune", verb, "--config", str(REPO / "recipes" / recipe), "--model.init_from", str(init_from)]
    args += ["--trainer.max_steps", "3", "--trainer.log_every_n_steps", "1", "--trainer.val_check_interval", "3"]
    args += ["--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar"]
    args += ["false", "--trainer.default_root_dir", str(root), "--data.cache_dir", str(cache), "--data.batch_size", "4"]
    if verb == "dpo":
        args += ["--model.method", "full"]
    args += list(extra)
    if devices == 1:
        main(args)
        return
    chosen = STRATEGY_ARGS.get(strategy, ("--trainer.strategy", strategy))
    command = [sys.executable, "-m", "litllm.cli", *args, *chosen, "--trainer.devices", "2"]
    run_processes(command, root.with_name(f"{root.name}.log"))


def test_full_sft_and_full_dpo_under_tp2_match_one_process(tmp_path, small_tokenizer):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=256, n_embd=64, n_head=4))  # biases, LayerNorm
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache = tmp_path / "cache"
    for devices in (1, 2):
        finetune("full", "sft_full_tiny.yaml", base, tmp_path / f"sft{devices}", cache, devices)
    one, two = losses(tmp_path / "sft1"), losses(tmp_path / "sft2")
    assert len(one) == 3 and two == pytest.approx(one, rel=1e-5)
    assert losses(tmp_path / "sft2", "val/loss") == pytest.approx(losses(tmp_path / "sft1", "val/loss"), rel=1e-5)
    for devices in (1, 2):  # both from the one-process SFT model
        finetune("dpo", "dpo_lora_tiny.yaml", tmp_path / "sft1" / "final", tmp_path / f"dpo{devices}", cache, devices)
    one, two = losses(tmp_path / "dpo1"), losses(tmp_path / "dpo2")
    assert len(one) == 3 and one[0] == pytest.approx(0.6931472, abs=1e-6)  # ln 2: policy == reference
    assert two == pytest.approx(one, rel=1e-5)
    margin = "val/reward_margin"
    assert losses(tmp_path / "dpo2", margin) == pytest.approx(losses(tmp_path / "dpo1", margin), rel=1e-4, abs=1e-6)
    assert (tmp_path / "dpo2" / "final" / "model.safetensors").is_file()
    # the tp2 checkpoint (the policy only: the reference comes from model.init_from) continues in one process
    for name in ("dpo1", "dpo2"):
        more = ("--trainer.max_steps", "4", "--ckpt_path", str(tmp_path / name / "checkpoints" / "last.ckpt"))
        finetune(
            "dpo", "dpo_lora_tiny.yaml", tmp_path / "sft1" / "final", tmp_path / f"{name}-more", cache, 1, extra=more
        )
    one, two = losses(tmp_path / "dpo1-more"), losses(tmp_path / "dpo2-more")
    assert len(one) == 1 and two == pytest.approx(one, rel=1e-5)


def test_full_sft_under_pp2_matches_one_process(tmp_path, small_tokenizer):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=256, n_layer=2))  # one block per stage
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache = tmp_path / "cache"
    finetune("full", "sft_full_tiny.yaml", base, tmp_path / "sft1", cache, 1)
    finetune("full", "sft_full_tiny.yaml", base, tmp_path / "sft-pp2", cache, 2, strategy="pp2")
    one, two = losses(tmp_path / "sft1"), losses(tmp_path / "sft-pp2")
    assert len(one) == 3 and two == pytest.approx(one, rel=1e-5)
    norms = losses(tmp_path / "sft-pp2", "train/grad_norm")
    assert norms == pytest.approx(losses(tmp_path / "sft1", "train/grad_norm"), rel=1e-4)
    assert losses(tmp_path / "sft-pp2", "val/loss") == pytest.approx(losses(tmp_path / "sft1", "val/loss"), rel=1e-5)
    a, b = (ModelDir(tmp_path / name / "final").load()[0].state_dict() for name in ("sft1", "sft-pp2"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    assert (tmp_path / "sft-pp2" / "final" / "template.json").is_file()


def assert_same_lora_exports(one: Path, two: Path) -> dict[str, torch.Tensor]:
    """The adapter tensors and the merged final/ of two runs agree; returns the second's merged weights."""
    from safetensors.torch import load_file

    a, b = (load_file(root / "adapter" / "adapter_model.safetensors") for root in (one, two))
    assert a.keys() == b.keys() and any("lora_B" in k for k in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)
    a, b = (ModelDir(root / "final").load()[0].state_dict() for root in (one, two))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    return b


@pytest.mark.parametrize("strategy", ["tp2", "tp2-sp", "fsdp2"])
def test_lora_sft_under_tp2_and_fsdp2_matches_one_process(tmp_path, small_tokenizer, strategy):
    """GPT-2 style (biases, tied head, LayerNorm): the base layers split (tp2, also with sequence parallelism:
    padded batches of any length) or sharded (fsdp2), adapters on qkv (column-wise: B split by rows in qkv's
    reordered layout), proj and down (row-wise: A split by columns) and up; the adapter directory and the
    merged model are exported from the gathered weights."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=256, n_layer=2, n_embd=64, n_head=4))
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache, extra = tmp_path / "cache", ("--model.lora_dropout", "0.0")
    finetune("lora", "sft_lora_tiny.yaml", base, tmp_path / "lora1", cache, 1, extra=extra)
    if strategy == "fsdp2":  # two data-parallel replicas: each reads half of the one process's batch
        extra += ("--data.batch_size", "2")
    finetune("lora", "sft_lora_tiny.yaml", base, tmp_path / "lora2", cache, 2, strategy=strategy, extra=extra)
    one, two = losses(tmp_path / "lora1"), losses(tmp_path / "lora2")
    assert len(one) == 3 and two == pytest.approx(one, rel=1e-5)  # fsdp2: the logged loss is the global batch's
    assert losses(tmp_path / "lora2", "val/loss") == pytest.approx(losses(tmp_path / "lora1", "val/loss"), rel=1e-5)
    merged = assert_same_lora_exports(tmp_path / "lora1", tmp_path / "lora2")
    start = model.state_dict()
    for key in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.down.weight"):  # the adapters trained
        assert float((merged[key] - start[key]).abs().max()) > 1e-4, key
    if strategy == "tp2":  # the tp2 run's sharded checkpoint continues in one process as the one-process one does
        for name in ("lora1", "lora2"):
            more = (
                *extra,
                "--trainer.max_steps",
                "4",
                "--ckpt_path",
                str(tmp_path / name / "checkpoints" / "last.ckpt"),
            )
            finetune("lora", "sft_lora_tiny.yaml", base, tmp_path / f"{name}-more", cache, 1, extra=more)
        one, two = losses(tmp_path / "lora1-more"), losses(tmp_path / "lora2-more")
        assert len(one) == 1 and two == pytest.approx(one, rel=1e-5)
        assert_same_lora_exports(tmp_path / "lora1-more", tmp_path / "lora2-more")


def test_lora_dpo_under_tp2_matches_one_process(tmp_path, small_tokenizer):
    """Llama style (GQA, RMSNorm, untied head): LoRA DPO's reference pass (the adapters switched off) under tp2."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=256, n_layer=2))
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache, extra = tmp_path / "cache", ("--model.lora_dropout", "0.0", "--model.method", "lora")
    for devices in (1, 2):
        finetune("dpo", "dpo_lora_tiny.yaml", base, tmp_path / f"dpo{devices}", cache, devices, extra=extra)
    one, two = losses(tmp_path / "dpo1"), losses(tmp_path / "dpo2")
    assert len(one) == 3 and one[0] == pytest.approx(0.6931472, abs=1e-6)  # ln 2: policy == reference
    assert two == pytest.approx(one, rel=1e-5)
    margin = "val/reward_margin"
    assert losses(tmp_path / "dpo2", margin) == pytest.approx(losses(tmp_path / "dpo1", margin), rel=1e-4, abs=1e-6)
    assert_same_lora_exports(tmp_path / "dpo1", tmp_path / "dpo2")


@pytest.mark.parametrize("method", ["full", "lora"])
def test_dpo_under_pp2_matches_one_process(tmp_path, small_tokenizer, method):
    """Full DPO (Llama style, its frozen reference cut into stages of its own) and LoRA DPO (GPT-2 style, tied
    head, the reference = the stages with their adapters off) under 2 stages with 2 micro-batches of whole
    pairs: ln 2 at the first step, then one process's losses, validation reward margin and exports."""
    torch.manual_seed(0)
    arch = "tiny-llama" if method == "full" else "tiny-gpt2"
    extra = {"n_embd": 64, "n_head": 4} if method == "lora" else {}
    model = GPT(ModelConfig.from_name(arch, block_size=256, n_layer=2, **extra))
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache, flags = tmp_path / "cache", ("--model.lora_dropout", "0.0", "--model.method", method)
    finetune("dpo", "dpo_lora_tiny.yaml", base, tmp_path / "dpo1", cache, 1, extra=flags)
    finetune("dpo", "dpo_lora_tiny.yaml", base, tmp_path / "dpo-pp2", cache, 2, strategy="pp2", extra=flags)
    one, two = losses(tmp_path / "dpo1"), losses(tmp_path / "dpo-pp2")
    assert (
        len(one) == 3 and one[0] == pytest.approx(0.6931472, abs=1e-6) and two[0] == pytest.approx(0.6931472, abs=1e-6)
    )
    assert two == pytest.approx(one, rel=1e-5)
    for key in ("val/loss", "val/reward_margin", "train/reward_margin"):
        assert losses(tmp_path / "dpo-pp2", key) == pytest.approx(losses(tmp_path / "dpo1", key), rel=1e-4, abs=1e-6)
    if method == "lora":
        assert_same_lora_exports(tmp_path / "dpo1", tmp_path / "dpo-pp2")
        return
    a, b = (ModelDir(tmp_path / name / "final").load()[0].state_dict() for name in ("dpo1", "dpo-pp2"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_lora_sft_under_pp2_matches_one_process(tmp_path, small_tokenizer):
    """Adapters inside both stages of a GPT-2-style model (biases, a tied head whose copy stays frozen); the
    adapter directory and the merged model are exported from the weights gathered from both stages."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=256, n_layer=2, n_embd=64, n_head=4))
    base = ModelDir(tmp_path / "base").save(model, small_tokenizer).path
    cache, extra = tmp_path / "cache", ("--model.lora_dropout", "0.0")
    finetune("lora", "sft_lora_tiny.yaml", base, tmp_path / "lora1", cache, 1, extra=extra)
    finetune("lora", "sft_lora_tiny.yaml", base, tmp_path / "lora-pp2", cache, 2, strategy="pp2", extra=extra)
    one, two = losses(tmp_path / "lora1"), losses(tmp_path / "lora-pp2")
    assert len(one) == 3 and two == pytest.approx(one, rel=1e-5)
    assert losses(tmp_path / "lora-pp2", "val/loss") == pytest.approx(losses(tmp_path / "lora1", "val/loss"), rel=1e-5)
    b = assert_same_lora_exports(tmp_path / "lora1", tmp_path / "lora-pp2")
    # the adapters trained in both stages: the merged projections moved away from the base
    start = model.state_dict()
    for key in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.down.weight"):
        assert float((b[key] - start[key]).abs().max()) > 1e-4, key


def test_qlora_under_fsdp2_is_refused_in_one_line(tmp_path, small_tokenizer, capsys):
    """FSDP2 would lose bitsandbytes' quantization state (it crashed in the first forward pass); refused before
    any process starts."""
    base = ModelDir(tmp_path / "base").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer).path
    args = ["finetune", "qlora", "--config", str(REPO / "recipes" / "sft_qlora_tiny.yaml"), "--model.init_from"]
    args += [str(base), "--trainer.strategy", "fsdp2", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    args += ["--trainer.default_root_dir", str(tmp_path / "run"), "--data.cache_dir", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("litllm: error")]
    assert err == ["litllm: error: " + QLORA_REFUSED]
    assert not (tmp_path / "run" / "final").exists()
