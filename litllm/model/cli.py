"""The model-stage verbs: ``litllm tokenizer train`` and ``litllm presets``."""

from __future__ import annotations

import argparse


def tokenizer_main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="litllm tokenizer", description="Train a byte-level BPE tokenizer.")
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="train on text files and save tokenizer.json")
    train.add_argument(
        "--files",
        nargs="+",
        default=["shakespeare"],
        help="text files, directories, globs or a built-in corpus name (default: shakespeare)",
    )
    train.add_argument("--vocab_size", type=int, default=8192)
    train.add_argument(
        "--special_tokens", nargs="+", default=["<|endoftext|>"], help="special tokens; the first is end-of-text"
    )
    train.add_argument("--min_frequency", type=int, default=2)
    train.add_argument("--text_field", default="text", help="field with the text in JSON/parquet files")
    train.add_argument("--out", required=True, help="directory (or .json path) to write tokenizer.json to")
    opts = parser.parse_args(args)

    from litllm.corpus.readers import documents, resolve_files
    from litllm.errors import DataError
    from litllm.model.tokenizer import train_bpe

    files = []
    for src in opts.files:
        resolved = resolve_files(src)
        if resolved is None:
            raise DataError(f"no such file, directory or corpus: {src}")
        files.extend(resolved)
    texts = (doc for src in opts.files for doc in documents(src, opts.text_field))

    tok = train_bpe(
        texts=texts, vocab_size=opts.vocab_size, special_tokens=opts.special_tokens, min_frequency=opts.min_frequency
    )
    path = tok.save(opts.out)
    print(f"Trained a {tok.vocab_size}-token byte-level BPE on {len(files)} file(s); saved {path}")


def presets_main(args: list[str]) -> None:
    import torch

    from litllm.model.config import PRESETS, ModelConfig
    from litllm.model.gpt import GPT

    print(f"{'preset':<14} {'params':>14}  layers  width  heads kv  context  vocab  positions norm      mlp")
    for name in PRESETS:
        config = ModelConfig.from_name(name)
        with torch.device("meta"):
            n = GPT(config).num_parameters()
        print(
            f"{name:<14} {n:>14,}  {config.n_layer:>6} {config.n_embd:>6} {config.n_head:>6} {config.n_kv_head:<3}"
            f"{config.block_size:>7} {config.vocab_size:>6}  {config.position:<9} {config.norm:<9} {config.mlp}"
        )
