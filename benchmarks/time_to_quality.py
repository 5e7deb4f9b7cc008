"""Time to quality: held-out bits per byte against wall time, start-up included, for three ways of
training a small GPT on tiny Shakespeare.

    python benchmarks/time_to_quality.py            # the full comparison (~20 min on 2 idle cores)
    python benchmarks/time_to_quality.py --quick    # a few steps each, for a smoke test

The systems, each run as its own command (so import and start-up time count, as a user pays them):

- ``reference``: a plain PyTorch loop written here at nanoGPT's CPU "baby GPT" settings (4 layers, 4
  heads, 128 wide, context 64, batch 12, character vocabulary, AdamW at 1e-3 with 100 warmup steps and
  cosine to 1e-4, beta2 0.99, weight decay 0.1, clip 1.0, no dropout, 2,000 iterations), on litllm's GPT
  backbone in its GPT-2 flavour without biases, as nanoGPT's config sets;
- ``default``: ``litllm fit --config recipes/pretrain_shakespeare.yaml`` (1,000 steps);
- ``fast``: ``litllm fit --config recipes/pretrain_shakespeare_fast.yaml`` (1,000 steps);
- ``fast, N steps, vocab V``: the fast recipe as a speed run: its whole schedule (warmup, stable, decay) sized
  to N steps (60 by default) and a V-token BPE (8,192 by default; the recipe's 2,048 otherwise). A larger
  vocabulary puts more bytes in each token, so each step sees more text for a little more compute: it
  gets to a given bits per byte in fewer seconds, but its larger tables overfit tiny Shakespeare in long
  runs, which is why the recipe keeps 2,048.

Every system is scored on the same held-out text, the last 10% of the characters (what
``data.val_fraction 0.1`` holds out, and what nanoGPT holds out), whole, in bits per byte, at several
points of its run. The clock is the command's wall time from launch, less the time spent in these
evaluations (they are the benchmark's, not the system's). The table gives each system's final bits per
byte, its wall time, the time it needs to reach the reference's final bits per byte (interpolated
between evaluations) as a share of the reference's wall time, and its bits per byte at the reference's
wall time. Writes results/time_to_quality.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


LAUNCHED = "TIME_TO_QUALITY_LAUNCHED"  # the launch time, from the parent, in seconds since the epoch
POINTS = "TIME_TO_QUALITY_POINTS"  # the JSON-lines file each run appends its evaluations to


def record(step: int, train_seconds: float, bpb: float) -> None:
    """Append one evaluation to the run's file (NaN bits per byte: the first training step starting)."""
    with open(os.environ[POINTS], "a") as f:
        f.write(json.dumps({"step": step, "seconds": train_seconds, "bpb": bpb}) + "\n")


# ---------------------------------------------------------------------------------------------- reference
def reference(iterations: int, every: int) -> None:
    """The plain loop (run in a process of its own by ``--reference``)."""
    import torch
    import torch.nn.functional as F

    from litllm.corpus.readers import BUILTIN_CORPORA
    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT

    launched = float(os.environ[LAUNCHED])
    torch.manual_seed(1337)
    text = BUILTIN_CORPORA["shakespeare"].read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    cut = int(len(text) * 0.9)
    train = torch.tensor([index[c] for c in text[:cut]], dtype=torch.long)
    held_out = torch.tensor([index[c] for c in text[cut:]], dtype=torch.long)
    block, batch, lr, min_lr, warmup = 64, 12, 1e-3, 1e-4, 100
    config = ModelConfig(
        vocab_size=len(chars), block_size=block, n_layer=4, n_head=4, n_embd=128, bias=False, dropout=0.0
    )
    model = GPT(config)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))

    def rate(it: int) -> float:
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        progress = min(1.0, (it - warmup) / (iterations - warmup))
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)

    @torch.no_grad()
    def bits_per_byte() -> float:
        model.eval()
        n = (len(held_out) - 1) // block
        x = held_out[: n * block].view(n, block)
        y = held_out[1 : n * block + 1].view(n, block)
        nats = sum(
            F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), reduction="sum").item()
            for xb, yb in zip(x.split(256), y.split(256))
        )
        model.train()
        return nats / math.log(2) / len(text[cut + 1 : cut + n * block + 1].encode("utf-8"))

    evaluating = 0.0
    for it in range(iterations):
        if it == 0:
            record(0, time.time() - launched, float("nan"))
        starts = torch.randint(len(train) - block - 1, (batch,))
        x = torch.stack([train[s : s + block] for s in starts])
        y = torch.stack([train[s + 1 : s + block + 1] for s in starts])
        for group in optimizer.param_groups:
            group["lr"] = rate(it)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (it + 1) % every == 0 or it + 1 == iterations:
            started = time.time()
            bpb = bits_per_byte()
            now = time.time()
            record(it + 1, now - launched - evaluating - (now - started), bpb)
            evaluating += now - started


# ---------------------------------------------------------------------------------------------- the runs
def commands(quick: bool, short_steps: int, short_vocab: int = 8192) -> dict[str, list[str]]:
    """Each system's command line."""
    steps = 30 if quick else 1000
    every = 10 if quick else 100
    ref_iterations = 60 if quick else 2000
    fit = [sys.executable, "-m", "litllm", "fit"]
    common = [
        "--trainer.callbacks+=held_out_clock.HeldOutClock",
        "--trainer.limit_val_batches=1.0",  # the whole held-out text
        "--trainer.enable_progress_bar=false",
        f"--trainer.max_steps={steps}",
        f"--trainer.val_check_interval={every}",
        "--trainer.num_sanity_val_steps=0",
    ]
    short = 20 if quick else short_steps
    return {
        "reference": [sys.executable, __file__, "--reference", str(ref_iterations), str(ref_iterations // 10 or 1)],
        "default": [*fit, "--config", "recipes/pretrain_shakespeare.yaml", *common],
        "fast": [*fit, "--config", "recipes/pretrain_shakespeare_fast.yaml", *common],
        f"fast, {short} steps, vocab {short_vocab}": [
            *fit,
            "--config",
            "recipes/pretrain_shakespeare_fast.yaml",
            *common,
            f"--trainer.max_steps={short}",
            f"--trainer.val_check_interval={max(short // 5, 1)}",
            f"--model.warmup_steps={max(short // 20, 1)}",
            f"--data.vocab_size={short_vocab}",
        ],
    }


def run(name: str, command: list[str], workdir: Path) -> dict:
    """One system, as a command from launch to exit; its evaluation points and its wall time."""
    points = workdir / f"{name.replace(' ', '_').replace(',', '')}.jsonl"
    points.unlink(missing_ok=True)
    root = workdir / f"out_{points.stem}"
    if "litllm" in command:
        command = [*command, f"--trainer.default_root_dir={root}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), str(ROOT)]))
    env[POINTS] = str(points)
    load_before = os.getloadavg()[0]
    launched = time.time()
    env[LAUNCHED] = repr(launched)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - launched
    if result.returncode != 0:
        sys.exit(f"{name} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    rows = [json.loads(line) for line in points.read_text().splitlines()]
    start_up = rows[0]["seconds"]
    curve = [(r["seconds"], r["bpb"]) for r in rows[1:]]
    return {
        "name": name,
        "steps": rows[-1]["step"],
        "start_up_s": start_up,
        "wall_s": wall,
        "curve": curve,
        "load": (load_before, os.getloadavg()[0]),  # 1-minute load average at launch and exit (2 = both cores busy)
    }


def time_to(curve: list[tuple[float, float]], target: float) -> tuple[float, bool] | None:
    """The first time the curve reaches ``target`` bits per byte, linear between evaluations, and whether
    that is only an upper bound (the first evaluation is already below the target)."""
    previous = None
    for seconds, bpb in curve:
        if bpb <= target:
            if previous is None:
                return seconds, True
            (s0, b0) = previous
            return s0 + (seconds - s0) * (b0 - target) / (b0 - bpb), False
        previous = (seconds, bpb)
    return None


def at_time(curve: list[tuple[float, float]], seconds: float) -> float | None:
    """The curve's bits per byte at ``seconds`` (linear between evaluations; None outside the run)."""
    for (s0, b0), (s1, b1) in zip(curve, curve[1:]):
        if s0 <= seconds <= s1:
            return b0 + (b1 - b0) * (seconds - s0) / (s1 - s0)
    return curve[-1][1] if curve and abs(curve[-1][0] - seconds) < 1e-9 else None


def table(runs: list[dict], machine: str) -> str:
    ref = runs[0]
    target, ref_time = ref["curve"][-1][1], ref["curve"][-1][0]
    lines = [
        f"Held-out text: the last 10% of tiny Shakespeare, whole, in bits per byte. {machine}",
        "Time: the command's wall time from launch, start-up included, evaluations excluded; '<=': the run's",
        "first evaluation was already below the target (an upper bound).",
        "",
        "| system | steps | start-up s | train s | final bits/byte | s to reference's final | share of reference's time "
        "| bits/byte at reference's time | load at start/end |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        reach = time_to(r["curve"], target)
        bound = "<= " if reach and reach[1] else ""
        same = at_time(r["curve"], ref_time)
        lines.append(
            f"| {r['name']} | {r['steps']:,} | {r['start_up_s']:.1f} | {r['curve'][-1][0]:.1f} | "
            f"{r['curve'][-1][1]:.4f} | {'not reached' if reach is None else f'{bound}{reach[0]:.1f}'} | "
            f"{'-' if reach is None else f'{bound}{reach[0] / ref_time:.0%}'} | "
            f"{'-' if same is None else f'{same:.4f}'} | "
            f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
        seconds, bpb = zip(*r["curve"])
        ax.plot(seconds, bpb, marker="o", markersize=3, label=r["name"])
    ax.axhline(runs[0]["curve"][-1][1], color="grey", linestyle=":", linewidth=1, label="reference's final")
    ax.set_xlabel("wall seconds from launch (evaluations excluded)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_ylim(top=min(4.0, max(b for r in runs for _, b in r["curve"]) + 0.1))
    ax.set_title("Time to quality, tiny Shakespeare")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps each (smoke test; writes no results)")
    parser.add_argument("--short_steps", type=int, default=60, help="the length of the short fast run")
    parser.add_argument("--short_vocab", type=int, default=8192, help="the short fast run's vocabulary size")
    parser.add_argument("--only", default=None, help="comma-separated systems to run (default: all)")
    parser.add_argument("--reference", nargs=2, type=int, metavar=("ITERATIONS", "EVERY"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS), help="where the table, JSON and PNG go")
    parser.add_argument("--from_json", default=None, help="rebuild the table and plot from a saved JSON, run nothing")
    args = parser.parse_args()
    if args.reference:
        reference(*args.reference)
        return
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        runs, machine = saved["runs"], saved["machine"]
        write(runs, machine, Path(args.out), Path(args.from_json).stem)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in commands(args.quick, args.short_steps, args.short_vocab).items():
            if args.only and name.split(",")[0] not in args.only.split(",") and name != "reference":
                continue
            print(f"{name}: {' '.join(command[1:])}", flush=True)
            runs.append(run(name, command, Path(tmp)))
            r = runs[-1]
            print(
                f"  {r['wall_s']:.1f} s, start-up {r['start_up_s']:.1f} s, bits/byte {r['curve'][-1][1]:.4f}",
                flush=True,
            )
    machine = f"{os.cpu_count()} cores, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}."
    write(runs, machine, Path(args.out), "time_to_quality_quick" if args.quick else "time_to_quality")


def write(runs: list[dict], machine: str, out: Path, stem: str) -> None:
    """The table (printed and saved), the runs as JSON and the curves as PNG."""
    text = table(runs, machine)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=1))
    plot(runs, out / f"{stem}.png")
    print(f"wrote {out / stem}.{{md,json,png}}")


if __name__ == "__main__":
    main()
