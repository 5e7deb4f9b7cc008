"""``litllm evaluate --model_dir DIR --data FILE``: loss, perplexity and bits per byte of a model on some text.

The documents are read with ``litllm.corpus.readers`` (the same files, globs, JSONL fields and
``datasets`` datasets as training), tokenized as in pretraining (each document followed by
end-of-text) and scored in non-overlapping windows of the model's context. The stream starts with
an end-of-text token, so every token of the text is predicted exactly once; bits per byte divide
the total loss by the UTF-8 bytes of the text and are comparable across tokenizers.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from litllm.corpus.readers import documents
from litllm.data.text import split_for_encoding
from litllm.errors import DataError
from litllm.model.gpt import GPT
from litllm.model.tokenizer import Tokenizer


def read_texts(
    source: str, text_field: str = "text", dataset_config: str | None = None, split: str = "test"
) -> Iterator[str]:
    """Documents of ``source``: a file, directory, glob, built-in corpus, or a ``datasets`` dataset (its ``split``)."""
    return documents(source, text_field, dataset_config, split)


def token_stream(
    documents: Iterable[str], tokenizer: Tokenizer, max_tokens: int | None = None
) -> tuple[list[int], int]:
    """End-of-text, then each document followed by end-of-text; and the UTF-8 bytes of the text it covers.

    With ``max_tokens``, stops after the document that reaches it (whole documents keep bytes exact).
    """
    ids, n_bytes = [tokenizer.eot_id], 0
    for doc in documents:
        for piece in tokenizer.encode_batch(split_for_encoding(doc)):
            ids.extend(piece)
        ids.append(tokenizer.eot_id)
        n_bytes += len(doc.encode("utf-8"))
        if max_tokens is not None and len(ids) - 1 >= max_tokens:
            break
    return ids, n_bytes


@torch.inference_mode()
def evaluate_tokens(model: GPT, ids: list[int], n_bytes: int, batch_size: int = 8) -> dict[str, float]:
    """Score ``ids`` (all but the first are predicted) in windows of the context; return the metrics."""
    if len(ids) < 2:
        raise DataError("no text to evaluate")
    device = next(model.parameters()).device
    block = model.config.block_size
    tokens = torch.tensor(ids, dtype=torch.long)
    # Window i predicts tokens [i*block + 1, (i+1)*block], seeing the block before each.
    starts = list(range(0, len(ids) - 1, block))
    total_nats, total_tokens = 0.0, 0
    for b in range(0, len(starts), batch_size):
        group = starts[b : b + batch_size]
        lengths = [min(block, len(ids) - 1 - s) for s in group]
        # Full windows share a batch; the one short last window runs at its own length.
        for length in sorted(set(lengths), reverse=True):
            rows = [s for s, n in zip(group, lengths) if n == length]
            x = torch.stack([tokens[s : s + length] for s in rows]).to(device)
            y = torch.stack([tokens[s + 1 : s + length + 1] for s in rows]).to(device)
            logits = model(x).float()
            total_nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            total_tokens += y.numel()
    loss = total_nats / total_tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "bits_per_byte": total_nats / math.log(2) / n_bytes if n_bytes else math.nan,
        "tokens": total_tokens,
        "bytes": n_bytes,
    }


def format_table(results: dict[str, float]) -> str:
    rows = [
        ("loss (nats/token)", f"{results['loss']:.4f}"),
        ("perplexity", f"{results['perplexity']:.2f}"),
        ("bits per byte", f"{results['bits_per_byte']:.4f}"),
        ("tokens", f"{results['tokens']:,}"),
        ("bytes", f"{results['bytes']:,}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in rows)


def evaluate_main(args: list[str]) -> None:
    """``litllm evaluate``: print loss, perplexity and bits per byte; optionally write them as JSON."""
    from litllm.infer.textgen import add_inference_args, add_model_dir_arg, inference_kwargs, load_for_inference

    parser = argparse.ArgumentParser(prog="litllm evaluate", description="Loss, perplexity and bits per byte.")
    add_model_dir_arg(parser)
    parser.add_argument("--data", default=None, help="text/JSONL/parquet file, directory, glob or datasets name")
    parser.add_argument(
        "--prompts", default=None, help="JSON list of fixed prompts to answer greedily (optionally with 'expect')"
    )
    parser.add_argument("--max_new_tokens", type=int, default=48, help="longest answer to a --prompts prompt")
    parser.add_argument("--text_field", default="text", help="field with the text in JSON/parquet/datasets rows")
    parser.add_argument("--dataset_config", default=None, help="configuration of a datasets dataset")
    parser.add_argument("--split", default="test", help="split of a datasets dataset")
    parser.add_argument("--max_tokens", type=int, default=None, help="stop after the document that reaches this")
    parser.add_argument("--batch_size", type=int, default=8)
    add_inference_args(parser)
    parser.add_argument("--output", default=None, help="write the results to this JSON file")
    opts = parser.parse_args(args)
    if opts.data is None and opts.prompts is None:
        parser.error("give --data (text to score), --prompts (a JSON file of prompts to answer), or both")
    model, tokenizer = load_for_inference(opts.model_dir, **inference_kwargs(opts))
    record: dict = {"model_dir": str(opts.model_dir)}
    if opts.data is not None:
        texts = read_texts(opts.data, opts.text_field, opts.dataset_config, opts.split)
        ids, n_bytes = token_stream(texts, tokenizer, opts.max_tokens)
        results = evaluate_tokens(model, ids, n_bytes, opts.batch_size)
        print(f"{opts.model_dir} on {opts.data}:")
        print(format_table(results))
        record.update(data=opts.data, **results)
    if opts.prompts is not None:
        from litllm.infer.answers import answer_file
        from litllm.model.model_dir import ModelDir

        answered = answer_file(model, tokenizer, ModelDir(opts.model_dir).template(), opts.prompts, opts.max_new_tokens)
        for item in answered["answers"]:
            mark = {True: "right", False: "wrong", None: "-"}[item["correct"]]
            print(f"[{mark}] {item['instruction']!r} -> {item['answer']!r}")
        if answered["checked"]:
            print(f"{answered['correct']}/{answered['checked']} answers hold the expected text")
        record.update(prompts=opts.prompts, **answered)
    if opts.output:
        Path(opts.output).write_text(json.dumps(record, indent=2) + "\n")
