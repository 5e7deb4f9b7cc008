"""Tensor and pipeline parallelism on CPU (gloo, loopback) train the same model as one process.

Same seed, same data, no dropout, fp32, gradients clipped at norm 1: the loss of every step and the consolidated ``final/`` model
directory of a ``tp2`` run (2 processes) and of a data-parallel x tensor-parallel run (``tp2`` on 4
processes: 2 FSDP replicas of 2 tensor-parallel processes) match a one-process run, on a GPT-2-style
model (biases, LayerNorm, learned positions) and a Llama-style one (RoPE, GQA, RMSNorm, SwiGLU, with
per-head query/key norms as in OLMo-2 and Qwen3, whose gradients are summed over the heads' processes).
So do pipelines of 2 stages over 4 blocks (GPipe and 1F1B schedules, a tied and an untied head, the
validation loss, a resume from the sharded checkpoint), 2 FSDP replicas of such a pipeline, and a pipeline
whose stages are each split over 2 tensor-parallel processes (3-D on 4 processes). A run stopped under one
layout continues under another (FSDP x TP, pipeline, one process, TP, DDP) as if it had not stopped. Each
run is its own Python process (``parallel_run.py``): Lightning's launcher re-executes the command line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from process_runs import run_processes
from safetensors.torch import load_file

from litllm.model.config import ModelConfig

pytestmark = pytest.mark.integration
RUN = Path(__file__).with_name("parallel_run.py")
STEPS = 12


def run(tmp: Path, name: str, *args: str) -> dict:
    """``parallel_run.py`` as its own process (it launches its ranks), its output in ``<name>.log``: its results."""
    root, out = tmp / name, tmp / f"{name}.json"
    command = [sys.executable, str(RUN), str(out), "--cache", str(tmp / "cache"), "--root", str(root), *args]
    resumes_its_own = "--ckpt_path" in args and Path(args[args.index("--ckpt_path") + 1]).is_relative_to(root)
    # (a run that may be tried again after gloo lost a peer starts from nothing: not one that reads its own root)
    run_processes(command, tmp / f"{name}.log", outputs=() if resumes_its_own else (root, out))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mesh")


def train_in_process(tmp: Path, name: str, runs: list[tuple[str, list[str]]]) -> dict[str, dict]:
    """One-process runs of ``parallel_run.py`` in this process (a Python start less each), by architecture:
    their results, and their files under ``<tmp>/<name>-<arch>``."""
    spec = importlib.util.spec_from_file_location("parallel_run", RUN)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    saved = dict(os.environ)
    results = {}
    try:
        for arch, args in runs:
            out, root = tmp / f"{name}-{arch}.json", tmp / f"{name}-{arch}"
            script.main([str(out), "--cache", str(tmp / "cache"), "--root", str(root), "--arch", arch, *args])
            results[arch] = json.loads(out.read_text())
    finally:  # seed_everything exports PL_GLOBAL_SEED: leave the environment as it was
        os.environ.clear()
        os.environ.update(saved)
    return results


@pytest.fixture(scope="module")
def single(tmp) -> dict[str, dict]:
    """The one-process references, trained in this process."""
    return train_in_process(tmp, "single", [("tiny-gpt2", []), ("tiny-llama", ["--val_batches", "2", "--qk_norm"])])


def same_losses(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want) == STEPS
    for step, (a, b) in enumerate(zip(got, want), start=1):
        assert a == pytest.approx(b, rel=1e-5), f"step {step}: {a} vs {b}"


def same_norms(got: list[float], want: list[float]) -> None:
    """The gradient norm every step clipped by (before clipping) is the one-process norm.

    Within 1e-4 relative: where a step's gradient spikes (8.3 at step 12 of the Llama-style run, about 1
    elsewhere) the runs' 1e-7 rounding differences show as 2.1e-5 in its norm. A norm over one stage's
    gradients only would leave out about half of them.
    """
    assert len(got) == len(want) == STEPS
    for step, (a, b) in enumerate(zip(got, want), start=1):
        assert a == pytest.approx(b, rel=1e-4), f"step {step}: gradient norm {a} vs {b}"
    assert max(want) > 1.0  # clipping at 1.0 acted: a norm over one stage's gradients would have shown


def same_model_directory(got: Path, want: Path, arch: str) -> None:
    """Every file the same; each weight tensor within 1e-5 relative (the key bias aside, see below)."""
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
    for path in want.iterdir():
        if path.name != "model.safetensors":
            assert (got / path.name).read_bytes() == path.read_bytes(), path.name
    a, b = load_file(got / "model.safetensors"), load_file(want / "model.safetensors")
    assert a.keys() == b.keys()
    config = ModelConfig.from_name(arch)
    q, kv = config.n_head * config.head_dim, config.n_kv_head * config.head_dim
    for key in b:
        x, y = a[key], b[key]
        if key.endswith("attn.qkv.bias"):
            # The key bias has no gradient in exact arithmetic (softmax ignores a shift shared by all keys):
            # AdamW turns each run's rounding noise into steps of about the learning rate, so both runs
            # hold noise there (~1e-5). The query and value biases are compared.
            x, y = torch.cat([x[:q], x[q + kv :]]), torch.cat([y[:q], y[q + kv :]])
        # Per tensor: AdamW divides each gradient element by its own running scale, so an element whose
        # gradient happens to be near zero turns the runs' rounding differences into visible steps
        # (one element of 16k moves 1.02e-5 apart in 12 steps). A tensor as a whole stays within a few 1e-5:
        # 6e-6 on the first data split, 1.35e-5 (blocks.1.attn.proj.weight) once the validation text was cut
        # by characters, the losses still equal to 1e-7; 3e-5 is rounding, a misplaced shard is ~1e-1.
        relative = float((x - y).norm() / y.norm())
        assert relative <= 3e-5, f"{key}: relative difference {relative:.2e}"
        assert float((x - y).abs().max()) <= 1e-4, key


def test_tp2_gpt2_style_matches_one_process_and_resumes_under_its_own_and_another_layout(tmp, single):
    reference = single["tiny-gpt2"]
    first = run(tmp, "tp2-gpt2", "--strategy", "tp2", "--devices", "2", "--steps", "10")
    ckpt = tmp / "tp2-gpt2" / "checkpoints" / "last.ckpt"
    assert sorted(p.name for p in ckpt.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    # The checkpoint holds qkv rows in the order of 2 tensor-parallel processes: FSDP2 on one process puts
    # them back in the model's order (litllm.parallel.reshard) and continues the same run.
    other = run(tmp, "tp2-to-fsdp1", "--strategy", "fsdp2", "--devices", "1", "--ckpt_path", str(ckpt))
    same_losses(first["losses"] + other["losses"], reference["losses"])
    same_model_directory(tmp / "tp2-to-fsdp1" / "final", tmp / "single-tiny-gpt2" / "final", "tiny-gpt2")
    resumed = run(tmp, "tp2-gpt2", "--strategy", "tp2", "--devices", "2", "--ckpt_path", str(ckpt))  # (overwrites it)
    assert resumed["global_step"] == STEPS
    same_losses(first["losses"] + resumed["losses"], reference["losses"])
    same_model_directory(tmp / "tp2-gpt2" / "final", tmp / "single-tiny-gpt2" / "final", "tiny-gpt2")


def test_tp2_llama_style_matches_one_process_in_training_validation_and_sampling(tmp, single):
    reference = single["tiny-llama"]
    # With activation recomputation too (each block's forward, collectives included, runs again in backward).
    args = ("--strategy", "tp2", "--devices", "2", "--arch", "tiny-llama", "--qk_norm", "--val_batches", "2")
    got = run(tmp, "tp2-llama", *args, "--activation_checkpointing")
    same_losses(got["losses"], reference["losses"])
    assert got["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    # The end-of-validation sample: 64 tokens generated on the KV cache, heads split over both processes.
    sample = (tmp / "tp2-llama" / "samples.txt").read_text()
    assert sample == (tmp / "single-tiny-llama" / "samples.txt").read_text() and len(sample) > 40
    same_model_directory(tmp / "tp2-llama" / "final", tmp / "single-tiny-llama" / "final", "tiny-llama")


def test_sequence_parallel_tp2_llama_style_matches_one_process_in_training_validation_and_sampling(tmp, single):
    """The residual stream, norms and dropout split along the sequence as well (with activation recomputation)."""
    reference = single["tiny-llama"]
    args = ("--tensor", "2", "--sequence_parallel", "--devices", "2", "--arch", "tiny-llama", "--qk_norm")
    got = run(tmp, "tp2-sp-llama", *args, "--val_batches", "2", "--activation_checkpointing")
    same_losses(got["losses"], reference["losses"])
    assert got["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    # The sample: one forward pass of the padded context per token (sequence parallelism keeps no KV cache).
    assert (tmp / "tp2-sp-llama" / "samples.txt").read_text() == (tmp / "single-tiny-llama" / "samples.txt").read_text()
    same_model_directory(tmp / "tp2-sp-llama" / "final", tmp / "single-tiny-llama" / "final", "tiny-llama")


def test_fsdp2_times_tp2_on_four_processes_matches_one_process(tmp, single):
    args = ("--strategy", "tp2", "--devices", "4", "--replicas", "2", "--arch", "tiny-llama", "--qk_norm")
    got = run(tmp, "dp2-tp2", *args)
    same_losses(got["losses"], single["tiny-llama"]["losses"])
    same_model_directory(tmp / "dp2-tp2" / "final", tmp / "single-tiny-llama" / "final", "tiny-llama")


# ---------------------------------------------------------------------------- pipeline parallelism
PIPELINE = ("--n_layer", "4", "--val_batches", "2")  # 4 blocks: 2 per stage of a 2-stage pipeline


@pytest.fixture(scope="module")
def single_deep(tmp) -> dict[str, dict]:
    """The one-process references of 4 blocks, trained in this process."""
    return train_in_process(tmp, "single-deep", [("tiny-gpt2", list(PIPELINE)), ("tiny-llama", list(PIPELINE))])


def test_pp2_gpipe_gpt2_style_matches_one_process_and_resumes(tmp, single_deep):
    """A tied head (the embedding's copy on the last stage), 4 micro-batches of 2 sequences; val/loss at the end."""
    reference = single_deep["tiny-gpt2"]
    args = ("--pipeline", "2", "--pipeline_schedule", "gpipe", "--microbatches", "4", "--devices", "2", *PIPELINE)
    first = run(tmp, "pp2-gpipe", *args, "--steps", "10")
    ckpt = tmp / "pp2-gpipe" / "checkpoints" / "last.ckpt"
    assert sorted(p.name for p in ckpt.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]  # one per stage
    resumed = run(tmp, "pp2-gpipe", *args, "--ckpt_path", str(ckpt))
    assert resumed["global_step"] == STEPS
    same_losses(first["losses"] + resumed["losses"], reference["losses"])
    same_norms(first["grad_norms"] + resumed["grad_norms"], reference["grad_norms"])
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    same_model_directory(tmp / "pp2-gpipe" / "final", tmp / "single-deep-tiny-gpt2" / "final", "tiny-gpt2")
    # The checkpoint holds each stage's weights apart, and its metadata says under which layout.
    from lightning.fabric.utilities.load import _METADATA_FILENAME

    metadata = torch.load(ckpt / _METADATA_FILENAME, weights_only=True)
    assert (metadata["pipeline_parallel_size"], metadata["tensor_parallel_size"]) == (2, 1)


def test_resume_under_other_layouts_continues_the_same_run(tmp, single_deep):
    """One run of 12 steps, stopped and resumed four times, each time under another layout: saved at FSDP 2 x
    TP 2 (4 processes), resumed as a 2-stage pipeline, from its checkpoint in one process, from that file at
    TP 2, from there under DDP on 2 processes. Losses, validation loss and final/ are the one-process run's."""
    reference = single_deep["tiny-gpt2"]
    legs = [
        ("--strategy", "tp2", "--devices", "4", "--replicas", "2"),
        ("--pipeline", "2", "--devices", "2"),
        (),
        ("--strategy", "tp2", "--devices", "2"),
        ("--strategy", "ddp", "--devices", "2", "--replicas", "2"),
    ]
    losses, previous = [], None
    for leg, (args, steps) in enumerate(zip(legs, (3, 6, 8, 10, 12))):
        resume = ("--ckpt_path", str(tmp / f"layouts-{leg - 1}" / "checkpoints" / "last.ckpt")) if leg else ()
        got = run(tmp, f"layouts-{leg}", *args, *PIPELINE, "--steps", str(steps), *resume)
        assert got["global_step"] == steps
        losses += got["losses"]
        previous = got
    assert (tmp / "layouts-2" / "checkpoints" / "last.ckpt").is_file()  # the one-process leg saved a file
    same_losses(losses, reference["losses"])
    assert previous["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    same_model_directory(tmp / "layouts-4" / "final", tmp / "single-deep-tiny-gpt2" / "final", "tiny-gpt2")


def test_pp2_1f1b_llama_style_matches_one_process(tmp, single_deep):
    """An untied head, RoPE, activation recomputation inside the stages; 2 micro-batches of 4 sequences."""
    reference = single_deep["tiny-llama"]
    args = ("--pipeline", "2", "--pipeline_schedule", "1f1b", "--devices", "2", "--arch", "tiny-llama", *PIPELINE)
    got = run(tmp, "pp2-1f1b", *args, "--activation_checkpointing")
    same_losses(got["losses"], reference["losses"])
    # The end-of-validation sample: each of its 64 tokens one forward pass of the context through both stages.
    sample = (tmp / "pp2-1f1b" / "samples.txt").read_text()
    assert sample == (tmp / "single-deep-tiny-llama" / "samples.txt").read_text() and len(sample) > 40
    same_norms(got["grad_norms"], reference["grad_norms"])
    assert got["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    same_model_directory(tmp / "pp2-1f1b" / "final", tmp / "single-deep-tiny-llama" / "final", "tiny-llama")
    # The report card counts the whole model, not rank 0's stage.
    facts = [json.loads((tmp / name / "run.json").read_text()) for name in ("pp2-1f1b", "single-deep-tiny-llama")]
    assert facts[0]["parameters"] == facts[1]["parameters"] == facts[1]["trainable_parameters"]


def test_fsdp2_times_pp2_on_four_processes_matches_one_process(tmp, single_deep):
    """2 pipelines of 2 stages, each stage sharded over its 2 replicas; each replica's 4 sequences of a step as
    2 batches of 2 (gradient accumulation), each cut into 2 micro-batches for 1F1B."""
    args = ("--pipeline", "2", "--devices", "4", "--replicas", "2", "--accumulate", "2", *PIPELINE)
    got = run(tmp, "dp2-pp2", *args)
    same_losses(got["losses"], single_deep["tiny-gpt2"]["losses"])
    same_norms(got["grad_norms"], single_deep["tiny-gpt2"]["grad_norms"])
    assert got["val_loss"] == pytest.approx(single_deep["tiny-gpt2"]["val_loss"], rel=1e-5)
    same_model_directory(tmp / "dp2-pp2" / "final", tmp / "single-deep-tiny-gpt2" / "final", "tiny-gpt2")


def test_pp2_times_tp2_on_four_processes_matches_one_process(tmp):
    """3-D parallelism: 2 stages, each stage's blocks split over 2 tensor-parallel processes (tied head, biases),
    with sequence parallelism (each stage sends its half of the sequence on) and a vocabulary of 301 tokens
    (the head's slices of 151 and 150: the last stage's logits must say the whole size); the final model
    directory is gathered from both stages with the qkv rows put back in the model's order."""
    odd = (*PIPELINE, "--vocab", "301", "--cache", str(tmp / "cache-301"))
    reference = train_in_process(tmp, "single-301", [("tiny-gpt2", list(odd))])["tiny-gpt2"]
    args = ("--pipeline", "2", "--tensor", "2", "--sequence_parallel", "--devices", "4", *odd)
    got = run(tmp, "pp2-tp2", *args)
    same_losses(got["losses"], reference["losses"])
    sample = (tmp / "pp2-tp2" / "samples.txt").read_text()
    assert sample == (tmp / "single-301-tiny-gpt2" / "samples.txt").read_text() and len(sample) > 40
    same_norms(got["grad_norms"], reference["grad_norms"])
    assert got["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5)
    same_model_directory(tmp / "pp2-tp2" / "final", tmp / "single-301-tiny-gpt2" / "final", "tiny-gpt2")
    from lightning.fabric.utilities.load import _METADATA_FILENAME

    ckpt = tmp / "pp2-tp2" / "checkpoints" / "last.ckpt"
    assert len(list(ckpt.glob("*.distcp"))) == 4  # one file per process
    metadata = torch.load(ckpt / _METADATA_FILENAME, weights_only=True)
    assert (metadata["pipeline_parallel_size"], metadata["tensor_parallel_size"]) == (2, 2)
