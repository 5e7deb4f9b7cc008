"""What the divergence guard costs: training steps per second with the guard on (its default policy,
rollback, checking every step as it does on CPU) and off, side by side in one process.

    python benchmarks/guard_overhead.py [--quick]

Runs alternate (off, on, off, on, ...) so that drift of the machine affects both alike; the table
reports the median tokens/s of each and their ratio. Writes results/guard_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import warnings
from pathlib import Path

import lightning as L
import torch
from timing import StepTimer
from train_throughput import SHAPES, make_data

from litllm.train import PretrainModule
from litllm.train.guard import DivergenceGuard

RESULTS = Path(__file__).parent / "results"


def run(shape: dict, dm, steps: int, warmup: int, root: Path, guard: bool) -> float:
    torch.manual_seed(0)
    module = PretrainModule(
        arch=shape["arch"], arch_overrides=shape["overrides"], vocab_size=shape["vocab"], warmup_steps=10
    )
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps + warmup,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        log_every_n_steps=10,
        # the default callbacks include the guard (rollback); "off" replaces it by one that checks nothing
        callbacks=[timer] if guard else [timer, DivergenceGuard(policy="off")],
        default_root_dir=str(root),
    )
    trainer.fit(module, datamodule=dm)
    return timer.tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, shape in SHAPES.items():
            dm = make_data(shape, tmp / "cache")
            tiny = "tiny" in name
            steps = (20 if args.quick else 150) if tiny else (4 if args.quick else 15)
            warmup = 10 if tiny else 2
            repeats = 1 if args.quick else 5
            off, on = [], []
            for r in range(repeats):
                off.append(run(shape, dm, steps, warmup, tmp / f"off{r}", guard=False))
                on.append(run(shape, dm, steps, warmup, tmp / f"on{r}", guard=True))
            row = {
                "shape": name,
                "steps": steps,
                "repeats": repeats,
                "off_tokens_per_s": statistics.median(off),
                "on_tokens_per_s": statistics.median(on),
            }
            row["on/off"] = row["on_tokens_per_s"] / row["off_tokens_per_s"]
            rows.append(row)
            print(
                f"{name}: off {row['off_tokens_per_s']:,.0f} tok/s, on {row['on_tokens_per_s']:,.0f} tok/s, ratio {row['on/off']:.3f}"
            )
    lines = [
        "| shape | timed steps x repeats | guard off tok/s | guard on tok/s | on / off |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['shape']} | {r['steps']} x {r['repeats']} | {r['off_tokens_per_s']:,.0f} | {r['on_tokens_per_s']:,.0f} | {r['on/off']:.3f} |"
        for r in rows
    ]
    print("\n".join(lines))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "guard_overhead.json").write_text(json.dumps(rows, indent=2) + "\n")
        (RESULTS / "guard_overhead.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
