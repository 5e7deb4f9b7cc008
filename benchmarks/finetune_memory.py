"""Memory and speed of full finetuning vs LoRA vs QLoRA on the same model, data and batch.

Each method runs in its own process (peak resident memory only grows within a process):

    python benchmarks/finetune_memory.py            # gpt-10m shape (6 x 384), 2,048-token vocab, batch 8
    python benchmarks/finetune_memory.py --steps 4  # quicker

Writes benchmarks/results/finetune_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
METHODS = ("full", "lora", "qlora")


def make_base(directory: Path) -> Path:
    import torch

    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.model_dir import ModelDir
    from litllm.model.tokenizer import train_bpe

    torch.manual_seed(0)
    tokenizer = train_bpe([_corpus()], vocab_size=2048)
    model = GPT(ModelConfig.from_name("gpt-10m", vocab_size=2048))
    return ModelDir(directory / "base").save(model, tokenizer)


def _corpus() -> Path:
    from litllm.data.sources import BUILTIN_CORPORA

    return BUILTIN_CORPORA["shakespeare"]


def run_one(method: str, base: Path, steps: int, workdir: Path) -> dict:
    """Finetune for ``steps`` steps with ``method`` and measure (runs in a fresh process)."""
    warnings.filterwarnings("ignore")
    import lightning as L
    import torch

    from litllm.data import LLMDataModule
    from litllm.model.adapters import weight_bytes
    from litllm.train import SFTModule

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    dm = LLMDataModule(
        mode="sft",
        train_data="instructions",
        tokenizer=str(base),
        block_size=256,
        max_length=256,
        batch_size=8,
        cache_dir=str(workdir / "cache"),
    )
    module = SFTModule(
        init_from=str(base),
        method=method,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_targets=["qkv", "proj", "up", "down"],
        warmup_steps=1,
        max_steps=steps + 2,
    )

    from timing import StepTimer

    timer = StepTimer(warmup=2)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps + 2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[timer],
        default_root_dir=str(workdir / method),
    )
    trainer.fit(module, datamodule=dm)
    model = module.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.backbone.parameters())
    optimizer = trainer.optimizers[0]
    optimizer_bytes = sum(
        t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)
    )
    base_bytes = weight_bytes(module.backbone) - sum(
        p.numel() * p.element_size() for n, p in module.backbone.named_parameters() if "lora_" in n
    )
    return {
        "method": method,
        "trainable_params": trainable,
        "total_params": total,
        "optimizer_state_mb": optimizer_bytes / 2**20,
        "base_weight_mb": base_bytes / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**20,
        "rss_at_start_mb": rss_start / 2**20,
        "tokens_per_s": timer.tokens_per_s,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:  # child process: measure one method, print one JSON line
        print("RESULT " + json.dumps(run_one(args.method, Path(args.base), args.steps, Path(args.workdir))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = make_base(Path(tmp))
        for method in METHODS:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--method",
                    method,
                    "--base",
                    str(base),
                    "--workdir",
                    tmp,
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
            rows.append(row)
            print(
                f"{method:<6} trainable {row['trainable_params']:>11,}  optimizer {row['optimizer_state_mb']:7.1f} MB  "
                f"base weights {row['base_weight_mb']:6.1f} MB  peak RSS {row['peak_rss_mb']:7.0f} MB  "
                f"{row['tokens_per_s']:7.0f} tok/s",
                flush=True,
            )
    full = rows[0]
    lines = [
        "| method | trainable params | share of full | optimizer state | frozen/base weights | peak RSS | tokens/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['trainable_params']:,} | {r['trainable_params'] / full['trainable_params']:.2%} | "
            f"{r['optimizer_state_mb']:.1f} MB | {r['base_weight_mb']:.1f} MB ({full['base_weight_mb'] / r['base_weight_mb']:.1f}x less) | "
            f"{r['peak_rss_mb']:.0f} MB | {r['tokens_per_s']:,.0f} |"
        )
    lines += [
        "",
        f"gpt-10m shape (6 x 384, context 256) with a 2,048-token vocabulary, batch 8 of instruction records, "
        f"fp32 on CPU, {args.steps} timed steps; LoRA rank 8 on qkv, proj, up, down. Peak RSS includes "
        f"Python, torch and the data (about {rows[0]['rss_at_start_mb']:.0f} MB before the model is built).",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "finetune_memory.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "finetune_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
