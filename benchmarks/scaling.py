"""Scaling on one machine: tokens/s and peak memory for 1 vs 2 processes (DDP, FSDP2, tensor, pipeline),
with and without activation checkpointing, same global batch.

    python benchmarks/scaling.py              # gpt-10m shape (6 x 384), 2,048-token vocab, context 256, global batch 8
    python benchmarks/scaling.py --steps 4    # quicker

On this CPU machine the two processes share the same two cores (one thread each), so the 2-process rows
measure the overhead of the parallel machinery, not a speed-up; GPU columns are not measured here.
Writes benchmarks/results/scaling.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from timing import free_port

RESULTS = Path(__file__).parent / "results"
CONFIGS = [  # (name, strategy, processes, activation checkpointing)
    ("1 process", "single", 1, False),
    ("1 process + AC", "single", 1, True),
    ("2 processes DDP", "ddp", 2, False),
    ("2 processes DDP + AC", "ddp", 2, True),
    ("2 processes FSDP2", "fsdp", 2, False),
    ("2 processes FSDP2 + AC", "fsdp", 2, True),
    ("2 processes tensor parallel (tp2)", "tp2", 2, False),
    ("2 processes tp2 + sequence parallel", "tp2-sp", 2, False),
    ("2 processes pipeline (pp2, 1F1B, 2 micro-batches)", "pp2", 2, False),
]
# Processes per data-parallel replica: they read the same batch (tensor and pipeline parallelism split the model).
SHARING = {"tp2": 2, "tp2-sp": 2, "pp2": 2}


def child(args: argparse.Namespace) -> None:
    """One training run; every rank writes its figures to ``args.out``-RANK.json."""
    warnings.filterwarnings("ignore")
    import lightning as L
    import torch
    from lightning.pytorch.strategies import ModelParallelStrategy
    from timing import StepTimer

    from litllm.data import LLMDataModule
    from litllm.parallel import MeshStrategy, register_strategies
    from litllm.train import PretrainModule

    register_strategies()
    world = args.processes
    replicas = world // SHARING.get(args.strategy, 1)
    dm = LLMDataModule(vocab_size=2048, block_size=256, batch_size=8 // replicas, cache_dir=args.cache)
    module = PretrainModule(arch="gpt-10m", activation_checkpointing=args.ac, warmup_steps=1, max_steps=args.steps + 2)
    named = {"single": "auto", "ddp": "ddp", "fsdp": ModelParallelStrategy()}
    named["tp2-sp"] = MeshStrategy(tensor_parallel_size=2, sequence_parallel=True)
    strategy = named.get(args.strategy, args.strategy)
    timer = StepTimer(warmup=2)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=world,
        strategy=strategy,
        max_steps=args.steps + 2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[timer],
        default_root_dir=args.root,
    )
    trainer.fit(module, datamodule=dm)
    result = {
        "rank": trainer.global_rank,
        "tokens_per_s": timer.tokens_per_s * replicas,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }
    Path(f"{args.out}-{trainer.global_rank}.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    for name in ("child", "out", "cache", "root", "strategy"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--ac", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy, processes, ac in CONFIGS:
            out = f"{tmp}/{strategy}-{processes}-{ac}"
            threads = "2" if processes == 1 else "1"  # the 2 cores either way
            env = {
                **os.environ,
                "OMP_NUM_THREADS": threads,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(free_port()),
            }
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "1",
                "--out",
                out,
                "--cache",
                f"{tmp}/cache",
                "--root",
                f"{tmp}/run",
                "--strategy",
                strategy,
                "--processes",
                str(processes),
                "--steps",
                str(args.steps),
            ]
            subprocess.run(cmd + (["--ac"] if ac else []), env=env, check=True, capture_output=True)
            ranks = [json.loads(Path(f"{out}-{r}.json").read_text()) for r in range(processes)]
            row = {
                "config": name,
                "processes": processes,
                "activation_checkpointing": ac,
                "tokens_per_s": ranks[0]["tokens_per_s"],
                "peak_rss_mb_per_process": max(r["peak_rss_mb"] for r in ranks),
            }
            rows.append(row)
            print(
                f"{name:<24} {row['tokens_per_s']:8.0f} tok/s   peak RSS {row['peak_rss_mb_per_process']:6.0f} MB/process",
                flush=True,
            )
    base = rows[0]["tokens_per_s"]
    lines = [
        "| configuration | CPU tokens/s | vs 1 process | CPU peak RSS per process | GPU tokens/s | GPU peak memory |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *(
            f"| {r['config']} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base:.2f} | "
            f"{r['peak_rss_mb_per_process']:,.0f} MB | not measured | not measured |"
            for r in rows
        ),
        "",
        f"gpt-10m shape (6 x 384) with a 2,048-token vocabulary, context 256, global batch 8, "
        f"fp32, {args.steps} timed steps, 2 CPU cores shared by all processes (1 thread each with 2 processes).",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scaling.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
