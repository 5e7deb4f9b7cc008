"""Throughput of ``litllm prepare`` against a bare ``tokenizers`` loop over the same text.

    python benchmarks/prepare_throughput.py            # ~16 MB corpus, 3 rounds (a few minutes on 2 cores)
    python benchmarks/prepare_throughput.py --mb 4 --rounds 1   # quick look

The corpus is generated from the built-in Shakespeare text: documents are random slices of it
(0.5-5k characters) in 8 JSONL files, so overlapping slices give the deduplication real work. The
tokenizer is a byte-level BPE of 8,192 tokens trained on it. Measured side by side, in rounds that
alternate the configurations (timings on a shared CPU drift from minute to minute):

- bare: ``Tokenizer.encode_batch`` over the documents already in memory, batches of ~1 MB, one thread;
- tokenize: ``prepare`` with cleaning and deduplication off (read, tokenize, write shards), 1 process;
- full: ``prepare`` with the default filters and exact + near deduplication, 1 and 2 processes.

A stage's time is the pipeline's own (units + dedup + shards) without the report's plotting,
a fixed cost of about a second. Figures are MB of input text per second (median of the rounds).
Targets (issue 7): tokenize >= 0.8x bare; full with 2 processes >= 1.7x full with 1; clean+dedup
add <= 50% to the tokenize time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process everywhere: compare like with like

from litllm.data.sources import BUILTIN_CORPORA  # noqa: E402
from litllm.model.tokenizer import Tokenizer, train_bpe  # noqa: E402
from litllm.prepare.dedup import DedupConfig  # noqa: E402
from litllm.prepare.pipeline import prepare  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def make_corpus(folder: Path, megabytes: float, files: int = 8, seed: int = 0) -> list[str]:
    """Random slices of the Shakespeare text as JSONL documents; returns the documents."""
    text = BUILTIN_CORPORA["shakespeare"].read_text(encoding="utf-8")
    rng = random.Random(seed)
    docs, size = [], 0
    while size < megabytes * 1e6:
        start = text.find("\n", rng.randrange(len(text) - 6000)) + 1
        doc = text[start : start + rng.randint(500, 5000)]
        docs.append(doc)
        size += len(doc.encode("utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        with open(folder / f"part{i:02d}.jsonl", "w", encoding="utf-8") as f:
            for doc in docs[i::files]:
                f.write(json.dumps({"text": doc}) + "\n")
    return [d for i in range(files) for d in docs[i::files]]


def bare_seconds(tokenizer: Tokenizer, docs: list[str], batch_chars: int = 1 << 20) -> float:
    start = time.perf_counter()
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += len(doc)
        if size >= batch_chars:
            tokenizer.backend.encode_batch(batch, add_special_tokens=False)
            batch, size = [], 0
    if batch:
        tokenizer.backend.encode_batch(batch, add_special_tokens=False)
    return time.perf_counter() - start


def pipeline_seconds(corpus: Path, tokenizer_path: Path, out: Path, processes: int, full: bool) -> tuple[float, dict]:
    report = prepare(
        input=str(corpus / "*.jsonl"),
        output=str(out),
        tokenizer=str(tokenizer_path),
        clean=full,
        dedup=DedupConfig() if full else DedupConfig(exact=False, near=False),
        processes=processes,
        progress=False,
    )
    seconds = report["seconds"]
    return seconds["units"] + seconds["dedup"] + seconds["shards"], report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=16.0, help="corpus size in MB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "prepare_throughput"), help="results path without suffix")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        docs = make_corpus(tmp / "corpus", args.mb)
        megabytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6
        tokenizer = train_bpe(files=[BUILTIN_CORPORA["shakespeare"]], vocab_size=8192)
        tokenizer_path = tokenizer.save(tmp / "tok" / "tokenizer.json")
        configs = {
            "bare encode_batch (1 thread)": None,
            "prepare: tokenize + shard, 1 process": (1, False),
            "prepare: clean + dedup + tokenize + shard, 1 process": (1, True),
            "prepare: tokenize + shard, 2 processes": (2, False),
            "prepare: clean + dedup + tokenize + shard, 2 processes": (2, True),
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        reports = {}
        for r in range(args.rounds):
            for name, config in configs.items():
                if config is None:
                    times[name].append(bare_seconds(tokenizer, docs))
                else:
                    out = tmp / f"out-{r}-{config[0]}-{config[1]}"
                    seconds, reports[name] = pipeline_seconds(tmp / "corpus", tokenizer_path, out, *config)
                    times[name].append(seconds)
                print(f"round {r + 1}: {name}: {megabytes / times[name][-1]:.2f} MB/s", flush=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    mbps = {name: megabytes / s for name, s in median.items()}
    names = list(configs)
    bare, tok1, full1, tok2, full2 = (median[n] for n in names)
    ratios = {
        "tokenize+shard vs bare (target >= 0.80)": bare / tok1,
        "2 processes vs 1, full pipeline (target >= 1.70)": full1 / full2,
        "2 processes vs 1, tokenize+shard": tok1 / tok2,
        "clean+dedup added to tokenize time, 1 process (target <= 0.50)": full1 / tok1 - 1,
    }
    full_report = reports[names[2]]
    cpu = full_report["cpu_seconds"]
    lines = [
        f"Corpus: {megabytes:.1f} MB, {len(docs):,} documents (slices of tiny Shakespeare) in 8 JSONL files; "
        f"BPE vocab 8,192; median of {args.rounds} round(s); `python benchmarks/prepare_throughput.py "
        f"--mb {args.mb:g} --rounds {args.rounds}`.",
        "",
        "| configuration | MB/s | seconds |",
        "|---|---:|---:|",
        *[f"| {name} | {mbps[name]:.2f} | {median[name]:.2f} |" for name in names],
        "",
        "| ratio | value |",
        "|---|---:|",
        *[f"| {name} | {value:.2f} |" for name, value in ratios.items()],
        "",
        "Where the full 1-process run spends its CPU time (seconds): "
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items())),
        f"Full run outcome: {full_report['documents_out']:,} of {full_report['documents_in']:,} documents kept, "
        f"{full_report['exact_duplicates']:,} exact and {full_report['near_duplicates']:,} near duplicates, "
        f"{sum(full_report['dropped'].values()):,} filtered.",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"megabytes": megabytes, "documents": len(docs), "seconds": times, "mb_per_s": mbps, "ratios": ratios},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
