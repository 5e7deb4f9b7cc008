"""Training throughput: litllm (LightningModule + Trainer) against a plain PyTorch loop of the same model.

Both sides train the same GPT on the same Shakespeare blocks with the same AdamW, schedule and
gradient clipping. Runs alternate (plain, litllm, plain, litllm, ...) in one process so machine drift
hits both alike; the table reports the median tokens/s of each and their ratio.

    python benchmarks/train_throughput.py                 # tiny, ~10M and ~30M shapes, fp32 and bf16-mixed
    python benchmarks/train_throughput.py --shapes 30m    # one shape (results/train_throughput_30m.*)
    python benchmarks/train_throughput.py --shapes 30m --precisions bf16-mixed   # its bf16 rows only (..._30m_bf16-mixed.*)
    python benchmarks/train_throughput.py --quick         # fewer steps, for a smoke test

The ~30M shape (GPT-2's 50,257-token head on 6 x 384 blocks, context 256, batch 8) adds ``compile`` rows:
``torch.compile`` of the backbone and the loss on both sides. bf16-mixed rows are skipped on CPUs without fast bf16
matrix units (AVX2-only CPUs emulate bf16 ~40x slower than fp32).

Writes benchmarks/results/train_throughput.{json,md} (all shapes), or
train_throughput_<shapes>[_<precisions>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from timing import StepTimer
from torch.utils.data import DataLoader

from litllm.data import LLMDataModule
from litllm.train import PretrainModule
from litllm.train.optim import warmup_cosine
from litllm.train.pretrain import next_token_loss

RESULTS = Path(__file__).parent / "results"

SHAPES = {
    # nanoGPT's CPU "baby GPT": 4 layers, 4 heads, 128 wide, context 64, batch 12
    "tiny (0.9M)": dict(
        arch="tiny-gpt2", overrides=dict(n_layer=4, n_head=4, n_embd=128, block_size=64), batch=12, vocab=2048
    ),
    # recipes/pretrain_shakespeare.yaml's model and batch (so its tokens/s cannot slip unseen)
    "shakespeare (2.2M)": dict(
        arch="gpt-10m",
        overrides=dict(n_layer=4, n_head=4, n_embd=192, block_size=128, dropout=0.1),
        batch=16,
        vocab=2048,
        steps=100,
    ),
    # gpt-10m: 6 layers x 384, context 256, batch 8, 8k vocabulary
    "gpt-10m (13.9M)": dict(arch="gpt-10m", overrides={}, batch=8, vocab=8192),
    # the same blocks with GPT-2's 50,257-token head: the head is most of the compute, as in small LLMs
    "gpt-30m (30.0M)": dict(arch="gpt-10m", overrides={}, batch=8, vocab=50257, compile=True),
}
KEYS = {
    "tiny": "tiny (0.9M)",
    "shakespeare": "shakespeare (2.2M)",
    "10m": "gpt-10m (13.9M)",
    "30m": "gpt-30m (30.0M)",
}


def fast_bfloat16() -> bool:
    """Whether this CPU multiplies bf16 matrices at least half as fast as fp32 (AMX/AVX512-BF16 do; AVX2
    CPUs emulate bf16 and run it ~40x slower, where bf16 rows would only measure the emulation)."""
    a = torch.randn(256, 256)
    timings = []
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        x @ x
        start = time.perf_counter()
        for _ in range(20):
            x @ x
        timings.append(time.perf_counter() - start)
    return timings[1] < 2 * timings[0]


def make_data(shape: dict, cache: Path) -> LLMDataModule:
    block = shape["overrides"].get("block_size", 256)
    dm = LLMDataModule(vocab_size=shape["vocab"], block_size=block, batch_size=shape["batch"], cache_dir=str(cache))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def plain_pytorch(
    shape: dict, dm: LLMDataModule, precision: str, steps: int, warmup: int, compile: bool = False
) -> float:
    """The reference: the loop a person would write by hand around the same model."""
    torch.manual_seed(0)
    module = PretrainModule(arch=shape["arch"], arch_overrides=shape["overrides"], vocab_size=shape["vocab"])
    module.configure_model()
    model = module.model.train()
    if compile:  # the backbone and the loss, as nanoGPT compiles a forward that returns the loss
        model = torch.compile(model)
    # fused: one kernel for every tensor's update, as litllm's default (on CPU too; 5x foreach's speed at 30M)
    optimizer = torch.optim.AdamW(module.parameter_groups(), lr=3e-4, betas=(0.9, 0.95), fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(10, steps + warmup, 0.1))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else nullcontext()
    loader = DataLoader(dm.train_dataset, batch_size=dm.batch_size, shuffle=True, drop_last=True)
    batches = iter(loader)
    start, tokens = None, 0
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        with autocast:
            loss = next_token_loss(model(batch["input_ids"]), batch["labels"], compiled=compile)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        loss.item()  # what printing/logging the loss costs in a hand-written loop
        if step >= warmup:
            tokens += batch["input_ids"].numel()
    return tokens / (time.perf_counter() - start)


def litllm_trainer(
    shape: dict,
    dm: LLMDataModule,
    precision: str,
    steps: int,
    warmup: int,
    root: Path,
    compile: bool = False,
    callbacks: list[L.Callback] = (),
    optimizer_impl: str = "auto",
) -> float:
    """litllm as a user runs it: the pretraining module, the Trainer, CSV logging and litllm's callbacks
    (``callbacks``: more, e.g. ``step_profile.py``'s clocks)."""
    torch.manual_seed(0)
    module = PretrainModule(
        arch=shape["arch"],
        arch_overrides=shape["overrides"],
        vocab_size=shape["vocab"],
        warmup_steps=10,
        max_steps=steps + warmup,
        compile=compile,
        optimizer_impl=optimizer_impl,
    )
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_steps=steps + warmup,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=L.pytorch.loggers.CSVLogger(root, name="bench"),
        log_every_n_steps=10,
        callbacks=[timer, *callbacks],
        default_root_dir=str(root),
    )
    trainer.fit(module, datamodule=dm)
    return timer.tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(KEYS), help=f"comma-separated: {', '.join(KEYS)}")
    parser.add_argument(
        "--precisions",
        default="32-true,bf16-mixed",
        help="comma-separated: 32-true, bf16-mixed (each with its compile row where the shape has one)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(torch.get_num_threads())
    repeats = 1 if args.quick else args.repeats
    chosen = [KEYS[k] for k in args.shapes.split(",")]
    bf16 = fast_bfloat16()
    if not bf16:
        print("this CPU has no fast bf16 matrix units: bf16-mixed rows skipped (they would time the emulation)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in chosen:
            shape = SHAPES[name]
            dm = make_data(shape, tmp / "cache")
            tiny = "tiny" in name
            # a tiny step takes ~50 ms: long runs and more repeats keep the ratio above the noise
            steps = (20 if args.quick else 200) if tiny else (4 if args.quick else shape.get("steps", 15))
            warmup = 10 if tiny else (3 if shape.get("compile") else 2)
            n_repeats = repeats + 2 if tiny and not args.quick else repeats
            variants = [
                (p, c) for p in args.precisions.split(",") for c in (False, True) if c <= shape.get("compile", False)
            ]
            for precision, compile in variants:
                if precision == "bf16-mixed" and not bf16:
                    continue
                plain, ours = [], []
                for r in range(n_repeats):  # alternate so drift affects both sides alike
                    plain.append(plain_pytorch(shape, dm, precision, steps, warmup, compile))
                    ours.append(litllm_trainer(shape, dm, precision, steps, warmup, tmp / f"run{r}", compile))
                row = {
                    "shape": name,
                    "precision": precision + (" + compile" if compile else ""),
                    "steps": steps,
                    "repeats": repeats,
                    "plain_tokens_per_s": statistics.median(plain),
                    "litllm_tokens_per_s": statistics.median(ours),
                    "paired_ratios": [o / p for o, p in zip(ours, plain)],
                }
                row["ratio"] = statistics.median(row["paired_ratios"])
                results.append(row)
                print(
                    f"{name:<16} {precision:<10} plain {row['plain_tokens_per_s']:>8.0f} tok/s   "
                    f"litllm {row['litllm_tokens_per_s']:>8.0f} tok/s   ratio {row['ratio']:.3f}",
                    flush=True,
                )
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "lightning": L.__version__,
        "threads": torch.get_num_threads(),
        "fast_bf16": bf16,
    }
    stem = "train_throughput" if len(chosen) == len(SHAPES) else "train_throughput_" + args.shapes.replace(",", "_")
    if args.precisions != "32-true,bf16-mixed":
        stem += "_" + args.precisions.replace(",", "_")
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    lines = [
        "| shape | precision | plain PyTorch tok/s | litllm tok/s | litllm / plain |",
        "| --- | --- | ---: | ---: | ---: |",
        *(
            f"| {r['shape']} | {r['precision']} | {r['plain_tokens_per_s']:,.0f} | {r['litllm_tokens_per_s']:,.0f} | "
            f"{r['ratio']:.2f} |"
            for r in results
        ),
        "",
        f"torch {meta['torch']}, lightning {meta['lightning']}, {meta['threads']} threads; "
        f"median tokens/s of {repeats} alternating runs (the tiny shape: 2 more); the ratio is the median of",
        "the per-pair ratios (litllm run / the plain run just before it)."
        + ("" if bf16 else " No bf16-mixed rows: this CPU has no fast bf16 matrix units."),
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
