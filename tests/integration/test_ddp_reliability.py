"""Reliability under DDP with 2 processes, through ``litllm fit`` as users run it (gloo on 127.0.0.1, CPU).

- A run killed with SIGKILL (no chance to save anything) after its checkpoint at step K resumes with
  ``--ckpt_path last`` on the same curve as a run never stopped: the same losses after K and the same
  final weights, dropout included.
- A loss that turns NaN on one process only makes both processes skip and then roll back together (the
  guard judges the loss averaged over processes); the run finishes with finite weights, equal on both
  processes and equal to the model directory rank 0 saves.
- Finetuning (SFT full, SFT LoRA with LoRA dropout, DPO full) resumed from the step-K checkpoint on 2
  processes continues bit-exactly: the same losses after K and the same final model directory.

Each run is its own process group (``subprocess``; Lightning's DDP launcher re-executes the command).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from process_runs import process_env, run_processes, why_it_failed
from safetensors.torch import load_file

from integration.test_cli_fit import SHAKESPEARE_RECIPE, column, read_metrics
from litllm.model.model_dir import ModelDir
from litllm.model.templates import get_template

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
STEPS, KILL_AT = 12, 4
FT_STEPS, FT_RESUME_AT = 6, 3


def env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    # this checkout's litllm, and the tests' callbacks (integration.faults)
    return process_env(PYTHONPATH=path, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")


def recipe(tmp: Path) -> str:
    """The Shakespeare recipe with a checkpoint every KILL_AT steps (list items cannot be set by flags)."""
    spec = yaml.safe_load(Path(SHAKESPEARE_RECIPE).read_text())
    for callback in spec["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"] = {"save_last": True, "every_n_train_steps": KILL_AT}
        if callback["class_path"].endswith("SampleGeneration"):
            callback["init_args"]["max_new_tokens"] = 4
    path = tmp / "ddp_recipe.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def fit_command(tmp: Path, root: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "litllm", "fit", "--config", recipe(tmp),
        "--model.arch", "tiny-gpt2", "--model.arch_overrides", "{block_size: 32, dropout: 0.1}",
        "--model.warmup_steps", "3", "--model.learning_rate", "3e-3",
        "--data.vocab_size", "512", "--data.block_size", "32", "--data.batch_size", "4",
        "--trainer.max_steps", str(STEPS), "--trainer.val_check_interval", str(STEPS),
        "--trainer.limit_val_batches", "2", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(root), *extra,
    ]  # fmt: skip


def start(tmp: Path, root: Path, cache: str, *extra: str) -> subprocess.Popen:
    """A run in its own process group (so that all its processes can be killed at once)."""
    return subprocess.Popen(
        fit_command(tmp, root, "--data.cache_dir", str(tmp / cache), *extra), env=env(), cwd=tmp,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        log = Path(proc.args[proc.args.index("--trainer.default_root_dir") + 1] + ".log")
        log.write_text(err)
        raise AssertionError(why_it_failed(proc.returncode, err, log))
    return err


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_file(path)
    for name, tensor in state.items():
        assert torch.isfinite(tensor).all(), (path, name)
    return state


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigkilled_ddp_run_resumes_exactly(tmp_path):
    tmp, root, markers = tmp_path, tmp_path / "killed", tmp_path / "hung"
    # The run never stopped and the one to kill go side by side (own caches: each trains its tokenizer).
    whole = start(tmp, tmp / "whole", "cache-whole")
    hang = ("--trainer.callbacks+=integration.faults.HangAt", f"--trainer.callbacks.step={KILL_AT}")
    proc = start(tmp, root, "cache", *hang, f"--trainer.callbacks.marker_dir={markers}")
    try:
        deadline = time.monotonic() + 240
        while not all((markers / f"rank{r}").is_file() for r in (0, 1)):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the step to kill it at"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # every process of the run, no chance to save anything
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    checkpoints = root / "checkpoints"
    assert not (checkpoints / "interrupted.ckpt").exists()
    saved = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == KILL_AT
    err = finish(start(tmp, root, "cache", "--ckpt_path", "last"))
    assert f"resuming from {checkpoints / 'last.ckpt'} (step {KILL_AT})" in err
    finish(whole)
    losses = dict(column(read_metrics(tmp / "whole"), "train/loss"))
    resumed = {s: v for s, v in column(read_metrics(root), "train/loss") if s >= KILL_AT}
    assert sorted(resumed) == [s for s in sorted(losses) if s >= KILL_AT] and len(resumed) >= STEPS - KILL_AT - 1
    for step, loss in resumed.items():
        assert loss == losses[step], (step, loss, losses[step])  # bit-exact, dropout included
    assert_same(weights(root / "final" / "model.safetensors"), weights(tmp / "whole" / "final" / "model.safetensors"))


def test_guard_rolls_back_both_processes_together(tmp_path):
    root, out = tmp_path / "run", tmp_path / "ranks"
    err = finish(
        start(
            tmp_path, root, "cache",
            "--trainer.callbacks+=litllm.train.guard.DivergenceGuard", "--trainer.callbacks.snapshot_every_n_steps=4",
            "--trainer.callbacks+=integration.faults.PoisonLoss", "--trainer.callbacks.steps=[5, 6, 7]",
            "--trainer.callbacks+=integration.faults.SaveRankWeights", f"--trainer.callbacks.out_dir={out}",
        )
    )  # fmt: skip
    assert "step 5: the loss is nan; update skipped (1 so far)" in err
    assert "step 7: the loss is nan 3 steps in a row; rolled back to the weights of step 4" in err
    for rank in (0, 1):  # the same decisions on both processes, though only process 1 saw NaN
        facts = json.loads((out / f"rank{rank}.json").read_text())
        assert facts == {"global_step": STEPS, "skipped": 2, "rollbacks": 1}, rank
    final = weights(root / "final" / "model.safetensors")
    assert_same(weights(out / "rank0.safetensors"), final)
    assert_same(weights(out / "rank1.safetensors"), final)
    losses = column(read_metrics(root), "train/loss")
    assert all(math.isfinite(v) for s, v in losses if s not in (5, 6, 7))


def test_guard_rolls_back_both_pipeline_stages_together(tmp_path):
    """Under ``pp2`` only the last stage (process 1) computes the loss, which turns NaN there; the first stage
    learns it from the loss the last stage hands on and takes the same decisions."""
    root, out = tmp_path / "run", tmp_path / "ranks"
    err = finish(
        start(
            tmp_path, root, "cache", "--trainer.strategy", "pp2",
            "--trainer.callbacks+=litllm.train.guard.DivergenceGuard", "--trainer.callbacks.snapshot_every_n_steps=4",
            "--trainer.callbacks+=integration.faults.PoisonLoss", "--trainer.callbacks.steps=[5, 6, 7]",
            "--trainer.callbacks+=integration.faults.SaveRankWeights", f"--trainer.callbacks.out_dir={out}",
        )
    )  # fmt: skip
    assert "step 5: the loss is nan; update skipped (1 so far)" in err
    assert "step 7: the loss is nan 3 steps in a row; rolled back to the weights of step 4" in err
    for rank in (0, 1):
        facts = json.loads((out / f"rank{rank}.json").read_text())
        assert facts == {"global_step": STEPS, "skipped": 2, "rollbacks": 1}, rank
    # Each process holds its stage: together they are the final model directory.
    stages = [weights(out / f"rank{rank}.safetensors") for rank in (0, 1)]
    assert not stages[0].keys() & stages[1].keys()
    assert_same({**stages[0], **stages[1]}, weights(root / "final" / "model.safetensors"))
    losses = column(read_metrics(root), "train/loss")
    assert all(math.isfinite(v) for s, v in losses if s not in (5, 6, 7))


FINETUNE_RECIPES = {"full": "sft_full_tiny", "lora": "sft_lora_tiny", "qlora": "sft_qlora_tiny", "dpo": "dpo_lora_tiny"}
# case -> (verb, extra options): DPO both as full finetuning and with the recipe's LoRA adapters
FINETUNE_CASES = {
    "full": ("full", []),
    "lora": ("lora", []),
    "qlora": ("qlora", []),
    "dpo-full": ("dpo", ["--model.method", "full"]),
    "dpo-lora": ("dpo", []),
}


def finetune_recipe(tmp: Path, verb: str) -> str:
    """The method's tiny recipe keeping every FT_RESUME_AT-step checkpoint, with short samples."""
    spec = yaml.safe_load((REPO / "recipes" / f"{FINETUNE_RECIPES[verb]}.yaml").read_text())
    for callback in spec["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"] = {"save_last": True, "every_n_train_steps": FT_RESUME_AT, "save_top_k": -1}
        if callback["class_path"].endswith("SampleGeneration"):
            callback["init_args"]["max_new_tokens"] = 4
    path = tmp / f"ddp_{verb}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def finetune(tmp: Path, verb: str, base: Path, root: Path, *extra: str) -> str:
    """``litllm finetune VERB`` on 2 DDP processes (4 rows each), to the end; returns its stderr."""
    command = [
        sys.executable, "-m", "litllm", "finetune", verb, "--config", finetune_recipe(tmp, verb),
        "--model.init_from", str(base), "--model.max_steps", str(FT_STEPS), "--model.warmup_steps", "2",
        "--model.lora_dropout", "0.1", "--model.arch_overrides", "{dropout: 0.1}",
        "--data.batch_size", "4", "--data.cache_dir", str(tmp / "cache"),
        "--trainer.max_steps", str(FT_STEPS), "--trainer.val_check_interval", str(FT_STEPS),
        "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(root), *extra,
    ]  # fmt: skip
    return run_processes(command, root.with_name(f"{root.name}.log"), env=env(), cwd=tmp)


@pytest.mark.parametrize("case", list(FINETUNE_CASES))
def test_ddp_finetuning_resumes_exactly(case, tiny_gpt2_model_dir, tmp_path):
    """The run never stopped keeps its step-FT_RESUME_AT checkpoint, which is what a run killed after that
    checkpoint would have left (the two are the same run up to there): resuming from it in another
    directory must give the rest of the first run (one launch fewer than killing a second run)."""
    base = tiny_gpt2_model_dir
    verb, options = FINETUNE_CASES[case]
    if verb == "dpo":
        ModelDir(base).save_template(get_template("alpaca"))
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    finetune(tmp_path, verb, base, whole, *options)
    saved = whole / "checkpoints" / f"epoch=0-step={FT_RESUME_AT}.ckpt"
    assert torch.load(saved, map_location="cpu", weights_only=True)["global_step"] == FT_RESUME_AT
    err = finetune(tmp_path, verb, base, resumed, *options, "--ckpt_path", str(saved))
    assert f"resuming from {saved} (step {FT_RESUME_AT})" in err
    losses = dict(column(read_metrics(whole), "train/loss"))
    after = {s: v for s, v in column(read_metrics(resumed), "train/loss") if s >= FT_RESUME_AT}
    assert (
        sorted(after) == [s for s in sorted(losses) if s >= FT_RESUME_AT] and len(after) >= FT_STEPS - FT_RESUME_AT - 1
    )
    for step, loss in after.items():
        assert loss == losses[step], (step, loss, losses[step])  # bit-exact, dropout included
    assert_same(weights(resumed / "final" / "model.safetensors"), weights(whole / "final" / "model.safetensors"))
