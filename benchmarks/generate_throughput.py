"""Generation throughput: litllm with its KV cache in float32, bfloat16, int8 weights (float32
activations) and int8 weights with bfloat16 activations (``--dtype`` / ``--quantize`` of the inference
verbs), litllm recomputing the context at every step, and Hugging Face ``transformers`` ``generate`` in
float32 on the same weights (exported with ``litllm convert to-hf``): the reference column.

Greedy decoding of a fixed 16-token prompt, random weights (speed does not depend on them).
tokens/s counts new tokens of all rows (batch x new tokens) over the wall time of the whole call,
prefill included. The cached litllm variants and transformers alternate in one process
(``--repeats`` rounds) so that machine drift hits all alike; the no-cache column is run once, with
fewer new tokens where 512 would take minutes (the table says how many).

    python benchmarks/generate_throughput.py            # ~10M and gpt2-124m shapes, batch 1 and 8
    python benchmarks/generate_throughput.py --quick    # small shapes and few tokens, a smoke test
    python benchmarks/generate_throughput.py --batch 1  # only batch 1 (the bf16 / int8 comparison)

Writes benchmarks/results/generate_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from litllm.infer.generate import generate
from litllm.infer.quantize import quantize_model
from litllm.interop.convert import convert_to_hf
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

RESULTS = Path(__file__).parent / "results"
PROMPT_TOKENS = 16

# (label, preset, overrides, {batch: (new tokens, new tokens without cache)}): fewer tokens where 512
# would take minutes on 2 cores (the table says so).
SHAPES = [
    (
        "gpt-10m 6x384, vocab 65 (10.8M)",
        "gpt-10m",
        dict(vocab_size=65, block_size=1024),
        {1: (512, 512), 8: (512, 128)},
    ),
    ("gpt2-124m (124.4M)", "gpt2-124m", {}, {1: (512, 64), 8: (128, 32)}),
]
QUICK_SHAPES = [("tiny-gpt2", "tiny-gpt2", dict(block_size=256), {1: (64, 64), 8: (64, 32)})]


def busy_fraction(interval: float = 0.5) -> float:
    """Share of the machine's CPU time that was busy over ``interval`` while this process slept (Linux)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = read()
        time.sleep(interval)
        total1, idle1 = read()
    except OSError:
        return 0.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


BUSY: list[float] = []
MAX_WAIT = [20.0]  # --max_wait


def wait_for_quiet(limit: float = 0.15, max_wait: float | None = None) -> None:
    """Wait (up to ``max_wait`` s) until other processes leave the cores alone.

    With every core in use, a second process makes PyTorch's spinning worker threads stall and
    small-step timings drop several-fold; the busy share seen last is kept for the results.
    """
    deadline = time.perf_counter() + (MAX_WAIT[0] if max_wait is None else max_wait)
    busy = busy_fraction()
    while busy > limit and time.perf_counter() < deadline:
        busy = busy_fraction(2.0)
    BUSY.append(busy)


def timed(fn) -> float:
    wait_for_quiet()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def litllm_run(model: GPT, prompt: torch.Tensor, new: int, use_cache: bool) -> torch.Tensor:
    return generate(model, prompt, new, temperature=0, use_cache=use_cache)


def hf_run(model, prompt: torch.Tensor, new: int) -> torch.Tensor:
    with torch.inference_mode():
        return model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            pad_token_id=0,
        )


# The litllm variants: (column key, dtype, quantize), as `--dtype` and `--quantize` load them.
VARIANTS = [
    ("cache", torch.float32, None),
    ("bf16", torch.bfloat16, None),
    ("int8", torch.float32, "int8"),
    ("int8_bf16", torch.bfloat16, "int8"),
]


def bench_shape(label: str, arch: str, overrides: dict, tokens: dict, repeats: int, batches: set[int]) -> list[dict]:
    import transformers

    torch.manual_seed(0)
    config = ModelConfig.from_name(arch, **overrides)
    model = GPT(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ModelDir(Path(tmp) / "litllm").save(model)
        convert_to_hf(Path(tmp) / "litllm", Path(tmp) / "hf")
        hf = transformers.AutoModelForCausalLM.from_pretrained(Path(tmp) / "hf", dtype=torch.float32).eval()
    # the same weights in each variant's dtype, then quantized as load_for_inference does
    models = {key: quantize_model(copy.deepcopy(model).to(dtype), quantize) for key, dtype, quantize in VARIANTS}
    rows = []
    for batch, (new, n_plain) in tokens.items():
        if batch not in batches:
            continue
        prompt = torch.randint(0, config.vocab_size, (batch, PROMPT_TOKENS))
        for variant in models.values():
            litllm_run(variant, prompt, 8, True)  # warm up
        hf_run(hf, prompt, 8), litllm_run(model, prompt, 8, False)
        reference = hf_run(hf, prompt, 32)
        same = {key: torch.equal(litllm_run(m, prompt, 32, True), reference) for key, m in models.items()}
        times: dict[str, list[float]] = {key: [] for key in [*models, "hf"]}
        for _ in range(repeats):
            for key, variant in models.items():
                times[key].append(timed(lambda: litllm_run(variant, prompt, new, True)))  # noqa: B023 (called at once)
            times["hf"].append(timed(lambda: hf_run(hf, prompt, new)))  # noqa: B023
        plain = timed(lambda: litllm_run(model, prompt, n_plain, False))  # noqa: B023
        row = {
            "shape": label,
            "params": model.num_parameters(),
            "batch": batch,
            "new_tokens": new,
            "no_cache_tok_s": batch * n_plain / plain,
            "no_cache_new_tokens": n_plain,
            "same_greedy_tokens_as_hf": same["cache"],
            "same_greedy_tokens_as_hf_by_variant": same,
        }
        for key, runs in times.items():
            row[f"{key}_tok_s"] = batch * new / statistics.median(runs)
        for key in models:
            row[f"{key}_vs_hf"] = row[f"{key}_tok_s"] / row["hf_tok_s"]
        row["cache_vs_no_cache"] = row["cache_tok_s"] / row["no_cache_tok_s"]
        shown = ", ".join(f"{key} {row[f'{key}_tok_s']:.1f}" for key in models)
        print(
            f"{label} batch {batch}: {shown} tok/s, no cache {row['no_cache_tok_s']:.1f} ({n_plain} tokens), "
            f"transformers {row['hf_tok_s']:.1f}; same greedy tokens as transformers: {same}",
            flush=True,
        )
        rows.append(row)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "| shape | batch | new tokens | transformers fp32 tok/s | litllm fp32 tok/s | litllm bf16 tok/s "
        "| litllm int8 tok/s | litllm int8 + bf16 tok/s | litllm fp32 no cache tok/s "
        "| fp32 / transformers | bf16 / transformers | int8 / transformers | int8 + bf16 / transformers "
        "| cache / no cache |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        plain = f"{r['no_cache_tok_s']:,.1f}"
        if r["no_cache_new_tokens"] != r["new_tokens"]:
            plain += f" ({r['no_cache_new_tokens']} tokens)"
        speeds = " | ".join(f"{r[f'{key}_tok_s']:,.1f}" for key, _, _ in VARIANTS)
        ratios = " | ".join(f"{r[f'{key}_vs_hf']:.2f}" for key, _, _ in VARIANTS)
        lines.append(
            f"| {r['shape']} | {r['batch']} | {r['new_tokens']} | {r['hf_tok_s']:,.1f} | {speeds} | {plain} "
            f"| {ratios} | {r['cache_vs_no_cache']:.1f} |"
        )
    lines.append("")
    busy = meta["max_busy_before_a_run"] or 0.0
    if busy > 0.15:
        lines.append(
            f"**Measured on a loaded machine**: other processes kept up to {busy:.0%} of the CPU busy when a run "
            "started, so the absolute figures are low and noisy; the variants alternate, so the ratios are the "
            "figures to read.\n"
        )
    lines.append(
        f"torch {meta['torch']}, transformers {meta['transformers']}, "
        f"{meta['threads']} thread(s), greedy, "
        f"{PROMPT_TOKENS}-token prompt. "
        + (
            f"{meta['new_tokens']} new tokens per run (--new_tokens), the no-cache column as noted; "
            if meta.get("new_tokens")
            else "Fewer new tokens where 512 would take minutes (124M at batch 8; the no-cache column as noted: its "
            "tokens/s fall as the context grows, so at 512 tokens they would be lower still and the cache / no cache "
            "ratio higher); "
        )
        + f"median of {meta['repeats']} alternating rounds of the cached litllm variants and transformers, one run "
        "without cache. int8: litllm's Int8Linear (int8 weights, one scale per row, PyTorch's "
        "_weight_int8pack_mm kernel; eager, no torch.compile). "
        f"Each run waited up to {meta.get('max_wait', 20):g} s for the other processes to go quiet (busiest start: "
        f"{meta['max_busy_before_a_run']:.0%} "
        "of the CPU busy)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shape, 64 tokens: a smoke test")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, action="append", help="only these batch sizes (repeatable)")
    parser.add_argument("--new_tokens", type=int, default=None, help="new tokens per run instead of the table's")
    parser.add_argument("--max_wait", type=float, default=20.0, help="longest wait (s) for a quiet machine per run")
    parser.add_argument("--out", default=str(RESULTS / "generate_throughput"), help="path stem of the .json/.md")
    opts = parser.parse_args()
    import transformers

    torch.set_num_threads(opts.threads)
    MAX_WAIT[0] = opts.max_wait
    shapes = QUICK_SHAPES if opts.quick else SHAPES
    if opts.new_tokens:
        n = opts.new_tokens
        shapes = [(*shape[:3], {b: (n, min(n, plain)) for b, (_, plain) in shape[3].items()}) for shape in shapes]
    batches = set(opts.batch or [1, 8])
    start = time.perf_counter()
    rows = [row for shape in shapes for row in bench_shape(*shape, repeats=opts.repeats, batches=batches)]
    meta = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "repeats": opts.repeats,
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.perf_counter() - start),
        "new_tokens": opts.new_tokens,
        "max_wait": opts.max_wait,
        "max_busy_before_a_run": round(max(BUSY), 2) if BUSY else None,
    }
    table = markdown(rows, meta)
    print(table)
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out.with_suffix('.md')} and .json ({meta['seconds']} s)")


if __name__ == "__main__":
    main()
