"""What the divergence guard costs: training steps per second with the guard on (its default policy,
rollback, checking every step as it does on CPU) and off, side by side in one process.

    python benchmarks/guard_overhead.py [--quick [--write]]

Runs alternate (off, on, off, on, ...) so that drift of the machine affects both alike; the table
reports the median tokens/s of each and their ratio, and, measured inside the "on" runs over the timed
steps, the time the guard's hooks take as a share of the step time (the end-to-end ratio is within the
machine's noise of a few percent; the hook time is the guard's cost itself). The step's gradient norm,
with the token normalisation of the gradients it needs first, is timed apart: it is computed once per
step and shared, and clipping (``gradient_clip_val=1.0`` here, as in every recipe) computes it when the
guard is off. Writes results/guard_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
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
    """The default guard, timing its own per-step work from optimizer step ``warmup`` on (the timed steps).

    The shared gradient norm is computed first, outside the guard's time (the guard then reads it).
    """

    warmup = 0
    seconds = shared_seconds = 0.0

    def on_before_backward(self, trainer, *args) -> None:
        start = time.perf_counter()
        super().on_before_backward(trainer, *args)
        if trainer.global_step >= self.warmup:
            TimedGuard.seconds += time.perf_counter() - start

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        start = time.perf_counter()
        pl_module.gradient_norm(optimizer)
        middle = time.perf_counter()
        super().on_before_optimizer_step(trainer, pl_module, optimizer)
        if trainer.global_step >= self.warmup:
            TimedGuard.shared_seconds += middle - start
            TimedGuard.seconds += time.perf_counter() - middle


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
    TimedGuard.warmup, TimedGuard.seconds, TimedGuard.shared_seconds = warmup, 0.0, 0.0
    trainer.fit(module, datamodule=dm)
    return (
        timer.tokens_per_s,
        TimedGuard.seconds / timer.steps,
        TimedGuard.shared_seconds / timer.steps,
        (timer.end - timer.start) / timer.steps,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (results printed, not written)")
    parser.add_argument("--write", action="store_true", help="write the results files after a --quick run too")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    # Said with the table: figures from a loaded machine or another thread count are not comparable.
    conditions = (
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, shape in SHAPES.items():
            dm = make_data(shape, tmp / "cache")
            tiny = "tiny" in name
            steps = (20 if args.quick else 150) if tiny else (4 if args.quick else 15)
            warmup = 10 if tiny else 2
            repeats = 1 if args.quick else 5
            off, on, hook, shared, step = [], [], [], [], []
            for r in range(repeats):
                off.append(run(shape, dm, steps, warmup, tmp / f"off{r}", guard=False)[0])
                tokens, hook_s, shared_s, step_s = run(shape, dm, steps, warmup, tmp / f"on{r}", guard=True)
                on.append(tokens)
                hook.append(hook_s)
                shared.append(shared_s)
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
            row["shared_norm_ms"] = statistics.median(shared) * 1000
            row["step_ms"] = statistics.median(step) * 1000
            row["hook_share"] = row["hook_ms"] / row["step_ms"]
            rows.append(row)
            print(
                f"{name}: off {row['off_tokens_per_s']:,.0f} tok/s, on {row['on_tokens_per_s']:,.0f} tok/s, ratio {row['on/off']:.3f}"
            )
    lines = [
        "| shape | timed steps x repeats | guard off tok/s | guard on tok/s | on / off | step ms | guard ms / step "
        "| share of step | shared norm ms / step |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['shape']} | {r['steps']} x {r['repeats']} | {r['off_tokens_per_s']:,.0f} | {r['on_tokens_per_s']:,.0f} "
        f"| {r['on/off']:.3f} | {r['step_ms']:.1f} | {r['hook_ms']:.3f} | {r['hook_share']:.2%} "
        f"| {r['shared_norm_ms']:.3f} |"
        for r in rows
    ]
    lines += [
        "",
        "Guard ms / step: the guard's own work (loss and norm checks, history, and the snapshot every 100",
        "steps where one falls among the timed steps: step 100 of the tiny shape's full run), median over",
        "repeats of its mean over the timed steps. Shared norm: the step's gradient norm and the",
        "token normalisation before it, computed once per step whether the guard is on or not (clipping",
        f"needs it), so not the guard's cost. CPU, {conditions}"
        + (" (--quick: 20 or 4 timed steps, one run each, no snapshot among the timed steps)." if args.quick else "."),
    ]
    print("\n".join(lines))
    if not args.quick or args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "guard_overhead.json").write_text(json.dumps(rows, indent=2) + "\n")
        (RESULTS / "guard_overhead.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
