"""Host memory of resuming a checkpoint under another layout, read one tensor at a time vs all at once.

A checkpoint saved under one layout (``--save``, default ``tp2``) is resumed under another (``--resume``,
default ``pp2``), 2 CPU processes each, through ``litllm fit`` as a user runs it. Each process's resident
memory is sampled every 5 ms while ``MeshStrategy`` reads the checkpoint and puts it into the model and
the optimizer: litllm's way (each tensor the process holds a part of read whole when needed,
``litllm.parallel.stored``) against every tensor read at once first (litllm's way before 2026-12-03; here
the same code with ``READ_AT_ONCE_NUMEL`` raised above every tensor's size). Alternated, 2 rounds.

    python benchmarks/resume_memory.py               # 8 blocks x 1024 wide (103.0M parameters)
    python benchmarks/resume_memory.py --n_layer 4   # quicker

Writes benchmarks/results/resume_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from timing import free_port

RESULTS = Path(__file__).parent / "results"
MODES = {"one at a time": "lazy", "all at once": "eager"}
LINE = re.compile(r"resume_memory rank (\d) before (\d+) peak (\d+) seconds ([\d.]+)")


def rss_mib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) // 1024


def launch(argv: list[str]) -> None:
    """``litllm`` (``argv``) with the reading of another layout's checkpoint measured (each rank runs this)."""
    from litllm.cli import main
    from litllm.parallel import stored, strategy

    if os.environ.get("RESUME_MEMORY_MODE") == "eager":
        stored.READ_AT_ONCE_NUMEL = 1 << 62
    read = strategy.MeshStrategy._load_other_layout

    def measured(self, path):
        before, peak, done = rss_mib(), [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        try:
            return read(self, path)
        finally:
            done.set()
            sampler.join()
            peak[0] = max(peak[0], rss_mib())
            seconds = time.perf_counter() - start
            print(
                f"resume_memory rank {self.global_rank} before {before} peak {peak[0]} seconds {seconds:.2f}",
                file=sys.stderr,
            )

    strategy.MeshStrategy._load_other_layout = measured
    main(argv)


def run(argv: list[str], mode: str = "lazy") -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    command = [sys.executable, __file__, "--launch", *argv]
    done = subprocess.run(command, env={**env, "RESUME_MEMORY_MODE": mode}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stderr


def shape(n_layer: int, n_embd: int) -> dict[str, int]:
    """The model's shape over the ``gpt-10m`` preset (heads of 64, context 128)."""
    return {"n_layer": n_layer, "n_head": n_embd // 64, "n_embd": n_embd, "block_size": 128}


def recipe(directory: Path, n_layer: int, n_embd: int) -> Path:
    import yaml

    spec = {
        "seed_everything": 1337,
        "model": {
            "class_path": "litllm.train.PretrainModule",
            "init_args": {
                "arch": "gpt-10m",
                "arch_overrides": shape(n_layer, n_embd),
                "learning_rate": 1e-4,
                "warmup_steps": 1,
            },
        },
        "data": {
            "class_path": "litllm.data.LLMDataModule",
            "init_args": {
                "train_data": "shakespeare",
                "vocab_size": 2048,
                "block_size": 128,
                "batch_size": 4,
                "cache_dir": str(directory / "cache"),
            },
        },
        "trainer": {
            "max_steps": 1,
            "accelerator": "cpu",
            "devices": 2,
            "limit_val_batches": 0,
            "enable_progress_bar": False,
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}}
            ],
        },
    }
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def parameters(n_layer: int, n_embd: int) -> int:
    import torch

    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT

    config = ModelConfig.from_name("gpt-10m", **shape(n_layer, n_embd), vocab_size=2048)
    with torch.device("meta"):
        return sum(p.numel() for p in GPT(config).parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n_layer", type=int, default=8)
    parser.add_argument("--n_embd", type=int, default=1024)
    parser.add_argument("--save", default="tp2")
    parser.add_argument("--resume", default="pp2")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = ["fit", "--config", str(recipe(Path(tmp), args.n_layer, args.n_embd))]
        run([*config, "--trainer.strategy", args.save, "--trainer.default_root_dir", f"{tmp}/saved"])
        checkpoint = f"{tmp}/saved/checkpoints/last.ckpt"
        for round_ in range(1, args.rounds + 1):
            for name, mode in MODES.items():
                resume = ["--trainer.strategy", args.resume, "--trainer.max_steps", "2", "--ckpt_path", checkpoint]
                err = run([*config, *resume, "--trainer.default_root_dir", f"{tmp}/{mode}{round_}"], mode)
                for rank, before, peak, seconds in sorted(LINE.findall(err)):
                    rows.append(
                        {"round": round_, "read": name, "rank": int(rank), "rss_before_mib": int(before),
                         "rss_peak_mib": int(peak), "added_mib": int(peak) - int(before), "seconds": float(seconds)}
                    )  # fmt: skip
    count = parameters(args.n_layer, args.n_embd)
    title = (
        f"Resuming a {args.save} checkpoint under {args.resume} (2 CPU processes): {count / 1e6:.1f}M parameters "
        f"({args.n_layer} blocks x {args.n_embd}), fp32 weights + AdamW state = {count * 12 / 2**20:,.0f} MiB whole"
    )
    lines = [
        f"# {title}",
        "",
        "| round | read | rank | RSS before (MiB) | peak while reading (MiB) | added (MiB) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['round']} | {r['read']} | {r['rank']} | {r['rss_before_mib']:,} | {r['rss_peak_mib']:,} "
            f"| {r['added_mib']:,} | {r['seconds']:.2f} |"
        )
    for name in MODES:
        added = [r["added_mib"] for r in rows if r["read"] == name]
        lines.append(f"\n{name}: added {min(added):,}-{max(added):,} MiB per process")
    lines.append(f"\nCommand: `python benchmarks/resume_memory.py --n_layer {args.n_layer} --n_embd {args.n_embd}`")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resume_memory.md").write_text(table)
    (RESULTS / "resume_memory.json").write_text(
        json.dumps({"title": title, "parameters": count, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launch"]:
        launch(sys.argv[2:])
    else:
        main()
