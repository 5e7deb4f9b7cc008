"""GPU self-check: is this machine as fast as it should be for litllm? One command, a few minutes.

    pip install --no-deps -e .          # on an offline node: torch, lightning, torchmetrics, tokenizers,
    python benchmarks/gpu_check.py      #   safetensors are all this needs (synthetic data, no hub)
    python benchmarks/gpu_check.py --cpu    # every part at a tiny shape on the CPU (a smoke test)

Parts, each with a pass/warn verdict against the expected figure for the GPU it runs on:

1. training: GPT-2 124M, bf16-mixed, context 1,024, through litllm's ``PretrainModule`` and Lightning's
   Trainer on one GPU, eager and with ``compile``: tokens/s, MFU (model FLOPs per token x tokens/s over
   the GPU's dense bf16 peak) and peak memory. Expected: MFU >= 25% eager and >= 35% compiled (GPT-2 124M
   is small for an H100; nanoGPT-class loops reach 40-50% compiled on A100 and H100);
2. FSDP2 on every visible GPU (litllm's ``fsdp2`` strategy, one process per GPU, compiled): tokens/s per
   GPU against the one-GPU compiled run. Expected: >= 85% of it (skipped with one GPU);
3. generation: greedy decoding with the KV cache, bf16, batch 1 and batch 16, 256 new tokens after a
   128-token prompt: tokens/s. Expected: batch 1 >= 100 tokens/s (one decoding step is ~25 small kernels
   per layer, bound by launch overhead, not by the GPU), and batch 16 >= 8x batch 1 (a decoding step
   costs about the same at batch 16, so batching must pay).

Writes ``gpu_check.md`` (the table) and ``gpu_check.json`` to ``--out`` (default: the current directory).
The GPU table (peak FLOP/s) is litllm's own (``litllm.train.callbacks.gpu_peak_flops``); an unknown GPU
gets figures but no MFU verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from litllm.infer.generate import generate_tokens
from litllm.parallel.names import register_strategies
from litllm.train import PretrainModule
from litllm.train.callbacks import gpu_peak_flops

EXPECTED = {"mfu_eager": 0.25, "mfu_compiled": 0.35, "fsdp_share": 0.85, "generate_1": 100.0, "batching": 8.0}


class RandomTokens(Dataset):
    """Synthetic pretraining blocks: uniform random tokens (speed does not depend on the text)."""

    def __init__(self, vocab_size: int, block_size: int, length: int) -> None:
        self.vocab_size, self.block_size, self.length = vocab_size, block_size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(self.vocab_size, (self.block_size + 1,), generator=g)
        return {"input_ids": ids[:-1], "labels": ids[1:]}


class StepClock(L.Callback):
    """Wall time of the optimizer steps after ``warmup`` (compilation and allocator warm-up excluded)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.tokens = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            self._sync(pl_module)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.tokens += batch["input_ids"].numel()
            self._sync(pl_module)
            self.end = time.perf_counter()

    @staticmethod
    def _sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)


def shape(cpu: bool) -> dict:
    """The model and batch of every part: GPT-2 124M on a GPU; a tiny GPT-2 on the CPU."""
    if cpu:
        return dict(arch="tiny-gpt2", overrides=dict(block_size=64), vocab=512, block=64, batch=4, steps=3, warmup=2)
    return dict(arch="gpt2-124m", overrides={}, vocab=50304, block=1024, batch=16, steps=20, warmup=5)


def train(cpu: bool, compile: bool, devices: int, root: Path) -> dict:
    """Training steps of the part's shape; tokens/s of this process, MFU and peak memory."""
    s = shape(cpu)
    torch.manual_seed(0)
    module = PretrainModule(
        arch=s["arch"], arch_overrides=s["overrides"], vocab_size=s["vocab"], warmup_steps=5, compile=compile
    )
    clock = StepClock(s["warmup"])
    steps = s["warmup"] + s["steps"]
    data = RandomTokens(s["vocab"], s["block"], steps * s["batch"] * devices)
    trainer = L.Trainer(
        accelerator="cpu" if cpu else "cuda",
        devices=devices,
        strategy="fsdp2" if devices > 1 else "auto",
        precision="bf16-mixed",
        max_steps=steps,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[clock],
        default_root_dir=str(root),
    )
    if devices == 1 and not cpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, DataLoader(data, batch_size=s["batch"], num_workers=0))
    tokens_per_s = clock.tokens / (clock.end - clock.start)
    device = torch.device("cpu") if cpu else torch.device("cuda", torch.cuda.current_device())
    peak_memory = None if cpu else torch.cuda.max_memory_allocated() / 1e9
    peak = gpu_peak_flops(device, "bf16-mixed")
    flops = module.config.flops_per_token(s["block"])
    result = {
        "tokens_per_s": tokens_per_s,
        "mfu": flops * tokens_per_s / peak if peak else None,
        "peak_memory_gb": peak_memory,
        "rank": trainer.global_rank,
    }
    del trainer, module
    if not cpu:
        torch.cuda.empty_cache()  # the next part (the FSDP2 processes) needs this GPU's memory
    return result


def generation(cpu: bool, batch: int) -> float:
    """Greedy decoding tokens/s (all rows together) with the KV cache, bf16 on a GPU, fp32 on the CPU."""
    from litllm.model.config import resolve_config
    from litllm.model.gpt import GPT

    s = shape(cpu)
    config = resolve_config(s["arch"], {**s["overrides"], "vocab_size": s["vocab"]})
    device = torch.device("cpu" if cpu else "cuda")
    model = GPT(config).to(device=device, dtype=torch.float32 if cpu else torch.bfloat16).eval()
    prompt_len, new = (16, 32) if cpu else (128, 256)
    prompt = torch.randint(s["vocab"], (batch, prompt_len), device=device)

    def decode() -> int:
        with torch.inference_mode():
            out = generate_tokens(model, prompt, max_new_tokens=new, temperature=0.0)
            return sum(1 for _ in out) * batch

    decode()  # warm-up: allocator, kernels
    if not cpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = decode()
    if not cpu:
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - start)


def verdict(value: float | None, floor: float) -> str:
    if value is None:
        return "no figure"
    return "pass" if value >= floor else "WARN"


def fsdp_part(cpu: bool, out: Path) -> None:
    """Run inside the FSDP2 subprocess (Lightning launches one process per device from here)."""
    devices = 2 if cpu else torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cpu, compile=not cpu, devices=devices, root=Path(tmp))
    if result["rank"] == 0:
        result["devices"] = devices
        out.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="every part at a tiny shape on the CPU (smoke test)")
    parser.add_argument("--out", default=".", help="where gpu_check.md and gpu_check.json go")
    parser.add_argument("--fsdp_part", default=None, help=argparse.SUPPRESS)  # the FSDP2 subprocess's result file
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    register_strategies()  # litllm's strategy names (fsdp2) for the Trainer

    if args.fsdp_part:
        fsdp_part(args.cpu, Path(args.fsdp_part))
        return
    if not args.cpu and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); --cpu runs the smoke test")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "CPU" if args.cpu else torch.cuda.get_device_name(0)
    count = 1 if args.cpu else torch.cuda.device_count()
    device = torch.device("cpu") if args.cpu else torch.device("cuda", 0)
    peak = gpu_peak_flops(device, "bf16-mixed")
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, figure: str, expected: str, result: str) -> None:
        rows.append((what, figure, expected, result))
        print(f"{what}: {figure} (expected {expected}) {result}", flush=True)

    results: dict = {"gpu": name, "gpus": count, "peak_bf16_flops": peak}
    with tempfile.TemporaryDirectory() as tmp:
        for compile in (False, True):
            if args.cpu and compile:
                continue  # compiling on the CPU takes minutes and measures nothing about a GPU
            r = train(args.cpu, compile, 1, Path(tmp))
            key = "compiled" if compile else "eager"
            results[f"train_{key}"] = r
            floor = EXPECTED[f"mfu_{key}"]
            mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
            memory = "" if r["peak_memory_gb"] is None else f", peak memory {r['peak_memory_gb']:.1f} GB"
            row(
                f"training, 1 GPU, bf16-mixed, {key}",
                f"{r['tokens_per_s']:,.0f} tokens/s, MFU {mfu}{memory}",
                f"MFU >= {floor:.0%}",
                verdict(r["mfu"], floor),
            )
        single = results.get("train_compiled", results["train_eager"])
        if count > 1 or args.cpu:
            result_file = Path(tmp) / "fsdp.json"
            command = [sys.executable, __file__, "--fsdp_part", str(result_file)] + (["--cpu"] if args.cpu else [])
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), "."])))
            done = subprocess.run(command, env=env)
            if done.returncode != 0 or not result_file.exists():
                row("FSDP2", f"failed (exit {done.returncode})", "runs", "WARN")
            else:
                r = json.loads(result_file.read_text())
                results["fsdp2"] = r
                share = r["tokens_per_s"] / single["tokens_per_s"]
                row(
                    f"FSDP2, {r['devices']} {'processes' if args.cpu else 'GPUs'}",
                    f"{r['tokens_per_s']:,.0f} tokens/s per process ({share:.0%} of one alone)",
                    f">= {EXPECTED['fsdp_share']:.0%}",
                    "smoke test" if args.cpu else verdict(share, EXPECTED["fsdp_share"]),
                )
        else:
            row("FSDP2", "skipped: one GPU", "-", "-")
    one = generation(args.cpu, 1)
    sixteen = generation(args.cpu, 16)
    results["generate"] = {"batch_1": one, "batch_16": sixteen}
    row(
        "generation, batch 1",
        f"{one:,.0f} tokens/s",
        f">= {EXPECTED['generate_1']:.0f}",
        verdict(one, EXPECTED["generate_1"]),
    )
    row(
        "generation, batch 16",
        f"{sixteen:,.0f} tokens/s ({sixteen / one:.1f}x batch 1)",
        f">= {EXPECTED['batching']:.0f}x batch 1",
        verdict(sixteen / one, EXPECTED["batching"]),
    )
    header = (
        f"GPU check: {count} x {name}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"lightning {L.__version__}, Python {platform.python_version()}; "
        f"dense bf16 peak {'unknown' if peak is None else f'{peak / 1e12:.0f} TFLOP/s'}"
        + (" (CPU smoke test: figures say nothing about a GPU)" if args.cpu else "")
    )
    lines = [header, "", "| part | measured | expected | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
    warned = sum(r[3] == "WARN" for r in rows)
    print(f"gpu_check: {len(rows) - warned} pass, {warned} warn; wrote {out / 'gpu_check.md'}")


if __name__ == "__main__":
    main()
