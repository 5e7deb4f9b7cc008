"""What the divergence guard costs: training steps per second with the guard on (its default policy,
rollback, checking every step as it does on CPU) and off, side by side in one process.

    python benchmarks/guard_overhead.py [--quick]

Runs alternate (off, on, off, on, ...) so that drift of the machine affects both alike; the table
reports the median tokens/s of each and their ratio, and, measured inside the "on" runs, the time the
guard's hooks take as a share of the step time (the end-to-end ratio is within the machine's noise of a
few percent; the hook time is the guard's cost itself). Writes results/guard_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from timing import StepTimer
from train_throughput import SHAPES, make_data

from litllm.train import PretrainModule
from litllm.train.guard import DivergenceGuard

RESULTS = Path(__file__).parent / "results"


class TimedGuard(DivergenceGuard):
    """The default guard, timing its own per-step work."""

    seconds = 0.0

    def on_before_backward(self, *args) -> None:
        start = time.perf_counter()
        super().on_before_backward(*args)
        TimedGuard.seconds += time.perf_counter() - start

    def on_before_optimizer_step(self, *args) -> None:
        start = time.perf_counter()
        super().on_before_optimizer_step(*args)
        TimedGuard.seconds += time.perf_counter() - start


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
        callbacks=[timer, TimedGuard()] if guard else [timer, DivergenceGuard(policy="off")],
        default_root_dir=str(root),
    )
    TimedGuard.seconds = 0.0
    trainer.fit(module, datamodule=dm)
    return timer.tokens_per_s, TimedGuard.seconds / (steps + warmup), (timer.end - timer.start) / timer.steps


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
            off, on, hook, step = [], [], [], []
            for r in range(repeats):
                off.append(run(shape, dm, steps, warmup, tmp / f"off{r}", guard=False)[0])
                tokens, hook_s, step_s = run(shape, dm, steps, warmup, tmp / f"on{r}", guard=True)
                on.append(tokens)
                hook.append(hook_s)
                step.append(step_s)
            row = {
                "shape": name,
                "steps": steps,
                "repeats": repeats,
                "off_tokens_per_s": statistics.median(off),
                "on_tokens_per_s": statistics.median(on),
            }
            row["on/off"] = row["on_tokens_per_s"] / row["off_tokens_per_s"]
            row["hook_ms"] = statistics.median(hook) * 1000
            row["step_ms"] = statistics.median(step) * 1000
            row["hook_share"] = row["hook_ms"] / row["step_ms"]
            rows.append(row)
            print(
                f"{name}: off {row['off_tokens_per_s']:,.0f} tok/s, on {row['on_tokens_per_s']:,.0f} tok/s, ratio {row['on/off']:.3f}"
            )
    lines = [
        "| shape | timed steps x repeats | guard off tok/s | guard on tok/s | on / off | guard ms / step | share of step |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['shape']} | {r['steps']} x {r['repeats']} | {r['off_tokens_per_s']:,.0f} | {r['on_tokens_per_s']:,.0f} "
        f"| {r['on/off']:.3f} | {r['hook_ms']:.2f} | {r['hook_share']:.2%} |"
        for r in rows
    ]
    print("\n".join(lines))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "guard_overhead.json").write_text(json.dumps(rows, indent=2) + "\n")
        (RESULTS / "guard_overhead.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
