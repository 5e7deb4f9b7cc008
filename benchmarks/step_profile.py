"""Where a training step's time goes: litllm's pretraining step (module + Trainer), phase by phase, and its
busiest PyTorch operations.

    python benchmarks/step_profile.py                          # the ~30M shape, bf16-mixed (fp32 on AVX2-only CPUs)
    python benchmarks/step_profile.py --shape shakespeare --precision 32-true
    python benchmarks/step_profile.py --optimizer_impl foreach       # the AdamW kernel litllm used before fused

Each configuration (eager, then ``model.compile``) trains as a user's run does (``benchmarks/train_throughput.py``'s
``litllm_trainer``: the pretraining module, the Trainer, CSV logging, litllm's default callbacks). A callback
stamps the wall clock at Lightning's hooks, so each step splits into:

* between steps: from the end of one step to the start of the next (the next batch from the loader, Lightning's
  loop, the callbacks that run after this clock's at a batch's end: litllm's logging and checks);
* forward and loss: to ``on_before_backward`` (Lightning zeroes the gradients in there too);
* backward: to ``on_after_backward``;
* gradient norm, clipping and optimizer step: to the end of the optimizer's ``step`` (a hook on the optimizer);
* after the step: the learning-rate schedule, logging, to ``on_train_batch_end``.

Then ``torch.profiler`` records 3 more steps: the operations with the most time of their own (not counting the
operations they call), as a share of those steps' wall time; compiled, each kernel Inductor generated is named. Steps after ``--warmup`` only (the first ones
pay one-off costs: compilation, allocations).

Writes benchmarks/results/step_profile_<shape>_<precision>.{json,md}.
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
from train_throughput import KEYS, RESULTS, SHAPES, fast_bfloat16, litllm_trainer, make_data

PHASES = (
    "between steps",
    "forward and loss",
    "backward",
    "gradient norm, clipping, optimizer step",
    "after the step",
)


class PhaseClock(L.Callback):
    """Wall-clock stamps at the hooks that bound each phase of a training step, after ``warmup`` steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.stamps: dict[str, float] = {}
        self.seconds: dict[str, list[float]] = {phase: [] for phase in PHASES}
        self.steps: list[float] = []
        self._last_end: float | None = None

    def _stamp(self, name: str) -> None:
        self.stamps[name] = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stamps = {}
        self._stamp("start")

    def on_before_backward(self, trainer, pl_module, loss):
        self._stamp("backward")

    def on_after_backward(self, trainer, pl_module):
        self._stamp("after backward")

    def on_train_start(self, trainer, pl_module):
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(lambda *_: self._stamp("after optimizer"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._stamp("end")
        s, previous = self.stamps, self._last_end
        self._last_end = s["end"]
        if trainer.global_step <= self.warmup or previous is None or "after optimizer" not in s:
            return
        names = ["start", "backward", "after backward", "after optimizer", "end"]
        bounds = [previous, *(s[name] for name in names)]
        for phase, a, b in zip(PHASES, bounds, bounds[1:]):
            self.seconds[phase].append(b - a)
        self.steps.append(s["end"] - previous)


class OperationProfile(L.Callback):
    """``torch.profiler`` over ``steps`` training steps after ``warmup``: self CPU time per operation."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.profiler: torch.profiler.profile | None = None
        self.started = self.wall = 0.0
        self.table: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup and self.profiler is None:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.start()
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.profiler is None or self.wall or trainer.global_step < self.warmup + self.steps:
            return
        self.profiler.stop()
        self.wall = time.perf_counter() - self.started
        events = [e for e in self.profiler.key_averages() if e.self_cpu_time_total > 0]
        events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
        for e in events[:12]:
            share = e.self_cpu_time_total / 1e6 / self.wall
            self.table.append({"operation": e.key, "calls per step": e.count / self.steps, "share": share})


def profile(
    shape: dict, dm, precision: str, compile: bool, steps: int, warmup: int, root: Path, optimizer_impl: str
) -> dict:
    """One configuration: the phase split, then the operation table of 3 more steps."""
    clock, operations = PhaseClock(warmup), OperationProfile(warmup + steps, 3)
    if compile:  # name each generated kernel in the profile (a record per kernel call: microseconds a step)
        import torch._inductor.config

        torch._inductor.config.cpp.enable_kernel_profile = True
    # 3 profiled steps after the timed ones (the profiler slows them), and one to spare
    callbacks = [clock, operations]
    litllm_trainer(shape, dm, precision, steps + 4, warmup, root, compile, callbacks, optimizer_impl)
    step, mean = statistics.median(clock.steps[:steps]), statistics.mean(clock.steps[:steps])
    phases = {phase: statistics.median(clock.seconds[phase][:steps]) for phase in PHASES}
    tokens_per_s = shape["batch"] * shape["overrides"].get("block_size", 256) / step
    row = {"compile": compile, "tokens_per_s": tokens_per_s, "step_s": step, "mean_step_s": mean, "phases": phases}
    return {**row, "ops": operations.table}


def markdown(name: str, precision: str, rows: list[dict], machine: str, optimizer_impl: str) -> str:
    lines = [
        f"# Where a training step's time goes: {name}, {precision}",
        "",
        f"{machine}; AdamW kernel: {optimizer_impl}; median of the timed steps; `python benchmarks/step_profile.py`.",
        "",
        "| phase | " + " | ".join("compiled" if r["compile"] else "eager" for r in rows) + " |",
        "| --- |" + " ---: |" * len(rows),
    ]
    for phase in PHASES:
        cells = [f"{r['phases'][phase] * 1e3:,.1f} ms ({r['phases'][phase] / r['step_s']:.0%})" for r in rows]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    lines.append("| **step** | " + " | ".join(f"**{r['step_s'] * 1e3:,.1f} ms**" for r in rows) + " |")
    lines.append("| tokens/s | " + " | ".join(f"{r['tokens_per_s']:,.0f}" for r in rows) + " |")
    lines.append(
        "| mean step (logging steps included) | " + " | ".join(f"{r['mean_step_s'] * 1e3:,.1f} ms" for r in rows) + " |"
    )
    for row in rows:
        kind = "Compiled (generated kernels named `cpp_fused_...`)" if row["compile"] else "Eager"
        lines += ["", f"{kind}: the operations with the most time of their own, as a share of 3 profiled steps:"]
        lines += ["", "| operation | calls per step | share |", "| --- | ---: | ---: |"]
        for op in row["ops"]:
            lines.append(f"| `{op['operation'][:90]}` | {op['calls per step']:,.0f} | {op['share']:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="30m", choices=list(KEYS))
    parser.add_argument("--precision", default=None, help="default: bf16-mixed where the CPU has fast bf16")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no_compile", action="store_true", help="the eager configuration only")
    parser.add_argument("--optimizer_impl", default="auto", help="model.optimizer_impl: auto, fused, foreach, for-loop")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(torch.get_num_threads())
    precision = args.precision or ("bf16-mixed" if fast_bfloat16() else "32-true")
    name = KEYS[args.shape]
    shape = SHAPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        dm = make_data(shape, Path(tmp) / "cache")
        rows = []
        for compile in (False,) if args.no_compile else (False, True):
            root = Path(tmp) / f"run{compile}"
            rows.append(profile(shape, dm, precision, compile, args.steps, args.warmup, root, args.optimizer_impl))
            print(f"{'compiled' if compile else 'eager'}: {rows[-1]['step_s'] * 1e3:.1f} ms a step", flush=True)
    machine = f"torch {torch.__version__}, lightning {L.__version__}, {torch.get_num_threads()} threads"
    kernel = "auto (fused)" if args.optimizer_impl == "auto" else args.optimizer_impl
    text = markdown(name, precision, rows, machine, kernel)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    impl = "" if args.optimizer_impl == "auto" else f"_{args.optimizer_impl}"
    stem = RESULTS / f"step_profile_{args.shape}_{precision}{impl}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps({"shape": name, "precision": precision, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
