"""The report of a ``litllm prepare`` run: what came in, what each step removed, what went out.

Printed as a table, saved as ``report.json`` and ``report.md``, with histograms of document length
(kept, filtered, duplicate) and of the quality score next to them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np


def document_outcomes(part_files: list[Path], reasons: list[str], keep: np.ndarray) -> dict:
    """Per input document (in input order): its length in characters and what became of it.

    Returns ``lengths``, ``outcome`` (``kept``, ``filtered``, ``duplicate``), ``dropped`` (counts per
    reason) and ``scores`` (quality scores of the documents that were scored).
    """
    lengths, codes, scores = [], [], []
    for path in part_files:
        with np.load(path, allow_pickle=False) as arrays:
            lengths.append(arrays["lengths"])
            codes.append(arrays["codes"])
            scores.append(arrays["scores"])
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.uint32)
    codes = np.concatenate(codes) if codes else np.zeros(0, np.uint8)
    outcome = np.where(codes > 0, "filtered", "kept").astype(object)
    survivors = np.flatnonzero(codes == 0)  # the documents the keep mask is about
    outcome[survivors[~keep]] = "duplicate"
    dropped = Counter(codes[codes > 0].tolist())
    return {
        "lengths": lengths,
        "outcome": outcome,
        "dropped": {name: int(dropped.get(i + 1, 0)) for i, name in enumerate(reasons)},
        "scores": np.concatenate(scores) if scores else np.zeros(0, np.float32),
    }


def summarize(summaries: list[dict], dropped: dict[str, int], dup_counts: dict[str, int], shards: list[dict]) -> dict:
    """The report's numbers, from the per-unit summaries and the dedup and shard stages."""
    total = Counter()
    seconds = Counter()
    bad_examples: list[str] = []
    for s in summaries:
        for k in ("records", "documents", "bytes", "chars", "decode_errors", "bad_records", "tokens_tokenized"):
            total[k] += s.get(k, 0)
        seconds.update(s["seconds"])
        bad_examples += s["bad_examples"][: 20 - len(bad_examples)]
    return {
        "records_in": total["records"],
        "documents_in": total["documents"],
        "bytes_in": total["bytes"],
        "decode_errors": total["decode_errors"],
        "bad_records": total["bad_records"],
        "bad_record_examples": bad_examples,
        "dropped": dropped,
        "tokens_tokenized": total["tokens_tokenized"],
        "exact_duplicates": dup_counts["exact_duplicate"],
        "near_duplicates": dup_counts["near_duplicate"],
        "documents_out": sum(s["documents"] for s in shards),
        "tokens_out": sum(s["tokens"] for s in shards),
        "shards": len(shards),
        "cpu_seconds": {k: round(v, 3) for k, v in sorted(seconds.items())},
    }


def markdown(report: dict) -> str:
    """The report as a Markdown table (also what is printed)."""
    docs_in = max(1, report["documents_in"])
    rows = [
        ("records read", report["records_in"], ""),
        ("bad records (skipped)", report["bad_records"], "see bad_record_examples in report.json"),
        ("records with undecodable bytes", report["decode_errors"], f"policy: {report.get('on_decode_error', '')}"),
        ("documents in", report["documents_in"], f"{report['bytes_in'] / 1e6:,.1f} MB"),
    ]
    for name, n in report["dropped"].items():
        rows.append((f"dropped: {name}", n, f"{100 * n / docs_in:.1f}%"))
    rows += [
        ("dropped: exact duplicates", report["exact_duplicates"], f"{100 * report['exact_duplicates'] / docs_in:.1f}%"),
        ("dropped: near duplicates", report["near_duplicates"], f"{100 * report['near_duplicates'] / docs_in:.1f}%"),
        ("documents out", report["documents_out"], f"{100 * report['documents_out'] / docs_in:.1f}%"),
        ("tokens tokenized", report["tokens_tokenized"], "documents that passed the text filters"),
        ("tokens out", report["tokens_out"], f"in {report['shards']} shard(s)"),
    ]
    lines = ["| step | count | note |", "|---|---:|---|"]
    lines += [f"| {name} | {n:,} | {note} |" for name, n, note in rows]
    seconds = report.get("seconds", {})
    if seconds:
        lines.append("")
        lines.append("| time | seconds |")
        lines.append("|---|---:|")
        lines += [f"| {k} | {v:,.2f} |" for k, v in seconds.items()]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict, outcomes: dict, quality_threshold: float | None) -> None:
    """Write report.json, report.md and the histograms; print the table."""
    (out / "report.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (out / "report.md").write_text(f"# litllm prepare report\n\n{table}")
    print(table)
    _histograms(out, outcomes, quality_threshold)


def _histograms(out: Path, outcomes: dict, quality_threshold: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths, outcome = outcomes["lengths"], outcomes["outcome"]
    if len(lengths):
        fig, ax = plt.subplots(figsize=(7, 4))
        low, high = max(1, int(lengths.min())), max(10, int(lengths.max()) + 1)
        bins = np.logspace(np.log10(low), np.log10(max(high, 2 * low)), 50)
        for name, color in (("kept", "tab:green"), ("filtered", "tab:red"), ("duplicate", "tab:orange")):
            selected = np.maximum(lengths[outcome == name], 1)
            if len(selected):
                ax.hist(selected, bins=bins, alpha=0.6, label=f"{name} ({len(selected):,})", color=color)
        ax.set_xscale("log")
        ax.set_xlabel("document length (characters)")
        ax.set_ylabel("documents")
        ax.set_title("Document length by outcome")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "length_histogram.png", dpi=100)
        plt.close(fig)
    scores = outcomes["scores"]
    if len(scores):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(scores, bins=50, range=(0, 1), color="tab:blue")
        if quality_threshold is not None:
            ax.axvline(quality_threshold, color="tab:red", linestyle="--", label=f"threshold {quality_threshold}")
            ax.legend()
        ax.set_xlabel("quality score (probability of looking like the positive examples)")
        ax.set_ylabel("documents")
        ax.set_title("Quality score")
        fig.tight_layout()
        fig.savefig(out / "quality_histogram.png", dpi=100)
        plt.close(fig)
