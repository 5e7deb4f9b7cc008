"""``litllm convert from-hf HF_DIR OUT_DIR``, ``litllm convert to-hf DIR HF_DIR [--dtype ...]`` and
``litllm convert to-gguf DIR OUT.gguf [--dtype float16]``."""

from __future__ import annotations

import argparse

import torch

from litllm.interop.convert.directories import convert_from_hf, convert_to_hf


def convert_main(args: list[str]) -> None:
    """``litllm convert from-hf HF_DIR OUT_DIR`` | ``to-hf DIR HF_DIR [--dtype bfloat16]`` | ``to-gguf DIR OUT.gguf``."""
    parser = argparse.ArgumentParser(
        prog="litllm convert", description="Convert between litllm and Hugging Face, or export GGUF for llama.cpp."
    )
    sub = parser.add_subparsers(dest="direction", required=True)
    from_hf = sub.add_parser("from-hf", help="an HF checkpoint directory -> a litllm model directory")
    from_hf.add_argument("hf_dir")
    from_hf.add_argument("out_dir")
    to_hf = sub.add_parser("to-hf", help="a litllm model directory -> an HF checkpoint directory")
    to_hf.add_argument("model_dir")
    to_hf.add_argument("hf_dir")
    to_hf.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="cast the weights")
    to_gguf = sub.add_parser("to-gguf", help="a litllm model directory -> one GGUF file (llama.cpp)")
    to_gguf.add_argument("model_dir")
    to_gguf.add_argument("gguf_file")
    to_gguf.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="of the matrices")
    opts = parser.parse_args(args)
    if opts.direction == "to-gguf":
        from litllm.interop.convert.gguf import write_gguf

        out = write_gguf(opts.model_dir, opts.gguf_file, opts.dtype)
        print(f"Converted {opts.model_dir} -> {out} (GGUF, {opts.dtype} matrices)")
    elif opts.direction == "from-hf":
        out = convert_from_hf(opts.hf_dir, opts.out_dir)
        print(f"Converted {opts.hf_dir} -> {out} (litllm model directory)")
    else:
        dtype = getattr(torch, opts.dtype) if opts.dtype else None
        out = convert_to_hf(opts.model_dir, opts.hf_dir, dtype)
        print(f"Converted {opts.model_dir} -> {out} (Hugging Face directory)")
