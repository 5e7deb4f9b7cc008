"""Load on ``litllm serve``: N concurrent streaming clients against one server, continuous batching on.

A server subprocess (``--max_batch 16``) serves a random-weight model (``--shape gpt-10m``: 6x384 with a
2,048-token BPE; ``--shape 124m``: GPT-2 124M's blocks and 50,257-row head; context 512; fp32 or ``--dtype``). At each concurrency N (1, 4, 16) N clients each send ``--requests`` streamed
completions one after another (16-token prompt, ``--tokens`` new tokens, temperature 0, usage included).
Reported per level: aggregate completion tokens/s over the level's wall time, its ratio to N = 1 (the
requests one at a time: sequential serving), time to first token (p50, p95) and the gap between
consecutive streamed chunks (p50, p95; one chunk is one token except where a token holds back text,
e.g. half a UTF-8 character).

    python benchmarks/serve_load.py                      # 1, 4, 16 clients, 64 new tokens, 2 requests each
    python benchmarks/serve_load.py --tokens 32 --requests 1
    python benchmarks/serve_load.py --shape 124m --tokens 128 --requests 1 --clients 1 16   # results/serve_load_124m.*
    python benchmarks/serve_load.py --shape 124m --dtype bfloat16 ...                      # serve_load_124m_bfloat16.*

Writes benchmarks/results/serve_load.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai
import torch

from litllm.corpus.readers import BUILTIN_CORPORA
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import train_bpe

RESULTS = Path(__file__).parent / "results"
PROMPT = "First Citizen:\nBefore we proceed any further, hear me speak."


def busy_fraction(interval: float = 0.5) -> float:
    """Share of the machine's CPU time that was busy over ``interval`` while this process slept (Linux)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = read()
    time.sleep(interval)
    total1, idle1 = read()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


SHAPES = {
    "gpt-10m": "gpt-10m shape (6x384, vocab 2,048, context 512, random weights)",
    "124m": "GPT-2 124M shape (12x768, GPT-2's 50,257-row tied head, context 512, random weights; the rows "
    "past the 2,048-token BPE are zero so greedy decoding picks tokens it can print)",
}


def make_model_dir(root: Path, shape: str) -> Path:
    tokenizer = train_bpe([BUILTIN_CORPORA["shakespeare"]], vocab_size=2048)
    torch.manual_seed(0)
    if shape == "124m":
        model = GPT(ModelConfig.from_name("gpt2-124m", block_size=512))
        with torch.no_grad():
            model.wte.weight[tokenizer.vocab_size :] = 0  # logit 0: below the best of 2,048 random logits
    else:
        model = GPT(ModelConfig.from_name("gpt-10m", vocab_size=2048, block_size=512))
    return ModelDir(root / "model").save(model, tokenizer).path


def start_server(model_dir: Path, max_batch: int, dtype: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "litllm.cli", "serve", "--model_dir", str(model_dir), "--port", str(port)]
    command += ["--max_batch", str(max_batch), "--dtype", dtype, "--log_level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return process, url
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}") from None
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def one_request(client: openai.AsyncOpenAI, tokens: int) -> dict:
    start = time.perf_counter()
    stream = await client.completions.create(
        model="model",
        prompt=PROMPT,
        max_tokens=tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals, used = [], 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            arrivals.append(time.perf_counter())
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
    return {"ttft": arrivals[0] - start, "gaps": [b - a for a, b in zip(arrivals, arrivals[1:])], "tokens": used}


async def level(client: openai.AsyncOpenAI, clients: int, requests: int, tokens: int) -> dict:
    async def one_client() -> list[dict]:
        return [await one_request(client, tokens) for _ in range(requests)]

    start = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(one_client() for _ in range(clients))) for r in rs]
    wall = time.perf_counter() - start
    ttft = sorted(r["ttft"] for r in results)
    gaps = sorted(g for r in results for g in r["gaps"])

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    return {
        "clients": clients,
        "requests": len(results),
        "completion_tokens": sum(r["tokens"] for r in results),
        "wall_s": wall,
        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
        "ttft_p50_ms": statistics.median(ttft) * 1000,
        "ttft_p95_ms": pct(ttft, 0.95),
        "gap_p50_ms": pct(gaps, 0.5),
        "gap_p95_ms": pct(gaps, 0.95),
    }


async def run_levels(url: str, levels: list[int], requests: int, tokens: int) -> list[dict]:
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600) as client:
        await level(client, 1, 1, 8)  # warm-up: first-call costs stay out of the table
        return [await level(client, n, requests, tokens) for n in levels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=2, help="requests per client, one after another")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--max_batch", type=int, default=16)
    parser.add_argument("--shape", choices=list(SHAPES), default="gpt-10m")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="the server's --dtype (bfloat16 is fast only with bf16 units: GPUs, Intel AMX, AMD Zen 4+)",
    )
    args = parser.parse_args()

    busy = busy_fraction()
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(make_model_dir(Path(tmp), args.shape), args.max_batch, args.dtype)
        try:
            rows = asyncio.run(run_levels(url, args.clients, args.requests, args.tokens))
            health = json.loads(urllib.request.urlopen(url + "/health").read())
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["vs_sequential"] = row["tokens_per_s"] / base

    note = (
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"server with {torch.get_num_threads()} threads, {args.dtype}, {SHAPES[args.shape]}, {args.tokens} new tokens "
        f"per request, {args.requests} request(s) per client, --max_batch {args.max_batch} (largest batch "
        f"decoded: {health['largest_batch']}). "
        + (
            f"Measured on a loaded, shared machine ({busy:.0%} of the CPU busy before the run): the ratios "
            "between levels say more than the absolute figures. "
            if busy > 0.2
            else f"Idle machine ({busy:.0%} of the CPU busy before the run). "
        )
        + "'vs sequential' is the tokens/s ratio to 1 client (requests one at a time); gaps are between "
        "consecutive streamed chunks."
    )
    header = (
        "| clients | requests | tokens | wall s | tokens/s | vs sequential | TTFT p50 ms | TTFT p95 ms "
        "| gap p50 ms | gap p95 ms |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [
        f"| {r['clients']} | {r['requests']} | {r['completion_tokens']} | {r['wall_s']:.1f} | "
        f"{r['tokens_per_s']:.1f} | {r['vs_sequential']:.2f} | {r['ttft_p50_ms']:.0f} | {r['ttft_p95_ms']:.0f} | "
        f"{r['gap_p50_ms']:.1f} | {r['gap_p95_ms']:.1f} |"
        for r in rows
    ]
    table = "\n".join([header, *lines, "", note])
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stem = "serve_load" if args.shape == "gpt-10m" else f"serve_load_{args.shape}"
    stem += "" if args.dtype == "float32" else f"_{args.dtype}"
    (RESULTS / f"{stem}.md").write_text(table + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps({"rows": rows, "note": note, "busy": busy}, indent=2) + "\n")


if __name__ == "__main__":
    main()
