"""How much memory one process needs to train a model under a parallel layout: a documented estimate.

    python -m litllm.parallel.memory                    # the table of docs/multinode.md
    python -m litllm.parallel.memory --arch llama3-8b --seq_len 8192 --data_parallel 8 --tensor_parallel 2

What it counts, per process, for the process that holds the most (the first or last pipeline stage):

**Model states** (bytes per parameter): weights 4 in ``32-true`` and ``bf16-mixed`` (bf16-mixed keeps
float32 weights and computes in bf16 from them), 2 in ``bf16-true``; gradients as many as the weights;
AdamW's two moments twice the weights (``adamw8bit``: 2 bytes; ``muon``: one momentum on the block
matrices, AdamW's two on the rest). DDP adds its gradient buckets (one more copy of the gradients).
FSDP2 shards weights, gradients and optimizer state over its data-parallel processes and gathers one
block at a time for compute (two in flight: the one computing and the one prefetched, in the compute
dtype). Tensor parallelism splits every block's matrices (and their biases) over its group, and the token
table and the head by vocabulary; learned positions and norms stay whole on every process. Pipeline parallelism gives
each stage its share of the blocks, the first stage also the embeddings, the last the final norm and head.

**Activations** kept for the backward pass, per token of a micro-batch, in the compute dtype, counted on
this backbone (``litllm.model.gpt``) with PyTorch's fused attention (no T x T matrix is kept):

- per block: the block input, the two norms' outputs and the attention residual (4 x n_embd, whole
  under tensor parallelism; RMSNorm one n_embd more), q, k and v (n_embd + 2 x kv width), with rotary
  positions q and k twice more, with QK-norm about 1.5 times q and k more, the attention output, the MLP hidden activations (GELU and ReLU²: 2 x
  intermediate, SwiGLU: 4 x intermediate); all but the first group split by tensor parallelism, the first
  group (and the dropout masks and kept block inputs) too with sequence parallelism; a dropout
  mask (one byte per element) for each of the two residual branches when dropout > 0 (on the CPU,
  attention dropout makes PyTorch fall back to the unfused kernel, which keeps the T x T weights: not
  counted); with activation checkpointing only the block input is kept (and one block's activations
  while it is recomputed);
- the head: the final norm's input and output (2 x n_embd), the float32 log-probabilities of the loss
  (4 bytes x vocabulary) and, when the logits are not already float32, the logits (vocabulary); both
  split by tensor parallelism (each process holds its slice of the vocabulary).

A pipeline stage keeps the activations of every micro-batch in flight: all of them with GPipe, at most
as many as there are stages with 1F1B. Not counted: PyTorch's allocator caching and fragmentation,
communication buffers, the CUDA context (~0.5-1 GB per GPU), temporary buffers inside kernels. The
tests (``tests/parallel/test_memory.py``) compare the model states with the bytes of the tensors a real
training step leaves (exactly) and the activations with the bytes autograd saves in a real forward pass
of tiny GPT-2- and Llama-style models on the CPU.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Literal

import torch

from litllm.model.config import ModelConfig, resolve_config

Precision = Literal["32-true", "bf16-mixed", "bf16-true"]


@dataclass(frozen=True)
class Layout:
    """How training is spread: sizes of the mesh and the switches that change memory.

    Args:
        data_parallel: Processes that each see different data (DDP or FSDP2 replicas).
        sharded: FSDP2 (shard model states over ``data_parallel``) instead of DDP (a copy on each).
        tensor_parallel: Processes that split each block's matrices.
        pipeline_parallel: Pipeline stages (consecutive groups of blocks).
        microbatches: Micro-batches per step in a pipeline.
        schedule: Pipeline schedule (``gpipe`` keeps every micro-batch's activations, ``1f1b`` at most
            one per stage).
        activation_checkpointing: Recompute block activations in backward (keep block inputs only).
        sequence_parallel: Split what tensor parallelism leaves whole in a block (the residual stream,
            the norms, dropout masks) along the sequence too.
    """

    data_parallel: int = 1
    sharded: bool = True
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    microbatches: int = 1
    schedule: Literal["gpipe", "1f1b"] = "1f1b"
    activation_checkpointing: bool = False
    sequence_parallel: bool = False


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one process holds at its peak (the busiest pipeline stage)."""

    parameters: int
    """Parameters this process keeps (its shard, its stage, its tensor-parallel slice)."""
    weights: float
    gradients: float
    optimizer: float
    gathered: float
    """FSDP2's gathered blocks in flight (and DDP's gradient buckets)."""
    activations: float

    @property
    def model_states(self) -> float:
        """Weights, gradients and optimizer state."""
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> float:
        return self.model_states + self.gathered + self.activations


@dataclass(frozen=True)
class _Parts:
    embedding: int  # token (and position) tables
    head: int  # final norm and, when untied, the output head
    vocabulary: int  # the token table's parameters (the head's too when untied): split by tensor parallelism
    block_split: int  # per block: matrices and biases that tensor parallelism splits
    block_whole: int  # per block: norm weights (whole on every process)
    block_matrices: int  # per block: the 2-D weights (Muon's)


def _parts(config: ModelConfig, pipeline_parallel: int) -> _Parts:
    from litllm.model.gpt import GPT  # the real module, built on the meta device, counts exactly

    with torch.device("meta"):
        model = GPT(config)
    named = dict(model.blocks[0].named_parameters())
    # Row-wise layers (proj, down) keep their bias whole under tensor parallelism, as do the norms.
    whole = sum(p.numel() for n, p in named.items() if "norm" in n or n.endswith(("proj.bias", "down.bias")))
    per_block = sum(p.numel() for p in named.values())
    embedding = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("wte", "wpe")))
    head = model.num_parameters() - embedding - config.n_layer * per_block
    if config.tie_embeddings and pipeline_parallel > 1:
        head += model.wte.weight.numel()  # the last stage needs its own copy of the shared table
    matrices = sum(p.numel() for p in named.values() if p.ndim == 2)
    return _Parts(embedding, head, model.wte.weight.numel(), per_block - whole, whole, matrices)


def _activation_elements(config: ModelConfig, tensor_parallel: int) -> tuple[float, float]:
    """Elements kept per token by one block: (whole under tensor parallelism, split by it)."""
    h, kv = config.n_embd, (config.n_kv_head or config.n_head) * config.head_dim
    attention = config.n_head * config.head_dim
    whole = 4 * h + (h if config.norm == "rmsnorm" else 0)  # RMSNorm also keeps its normalised input
    hidden = config.intermediate_size * (4 if config.mlp == "swiglu" else 2)
    rope = 2 * (attention + kv) if config.position == "rope" else 0  # q and k before rotation, and rotated halves
    qk_norm = 1.5 * (attention + kv) if config.qk_norm else 0  # measured: their inputs and normalised values
    return whole, (attention + 2 * kv + attention + rope + qk_norm + hidden) / tensor_parallel


def estimate_memory(
    config: ModelConfig,
    micro_batch: int,
    seq_len: int,
    layout: Layout = Layout(),
    precision: Precision = "bf16-mixed",
    optimizer: Literal["adamw", "adamw8bit", "muon"] = "adamw",
) -> MemoryEstimate:
    """The bytes one process needs at its peak to train ``config`` on ``micro_batch`` x ``seq_len`` tokens."""
    d, t, p = layout.data_parallel, layout.tensor_parallel, layout.pipeline_parallel
    parts = _parts(config, p)
    blocks = math.ceil(config.n_layer / p)
    # The busiest stage: the first (embeddings) or the last (head); with one stage, both.
    # Tensor parallelism splits the token table (and the head's, the same size, where the stage has one).
    table = parts.vocabulary * (1 - 1 / t)
    embedding = parts.embedding - table
    head = parts.head - (table if parts.head > parts.vocabulary else 0)
    ends = [embedding, head] if p > 1 else [embedding + head]
    block_params = parts.block_split / t + parts.block_whole
    params = blocks * block_params + max(ends)
    weight_bytes = 2 if precision == "bf16-true" else 4
    compute_bytes = 4 if precision == "32-true" else 2
    shard = d if layout.sharded else 1
    weights = params * weight_bytes / shard
    gradients = weights
    if optimizer == "adamw8bit":
        moments = params * 2.0
    elif optimizer == "muon":
        matrices = blocks * parts.block_matrices / t
        moments = matrices * weight_bytes + (params - matrices) * 2 * weight_bytes
    else:
        moments = params * 2.0 * weight_bytes
    optimizer_bytes = moments / shard
    if layout.sharded and d > 1:
        gathered = 2 * block_params * compute_bytes  # the block computing and the one prefetched
    elif d > 1:
        gathered = params * weight_bytes  # DDP's gradient buckets
    else:
        gathered = 0.0
    tokens = micro_batch * seq_len
    whole, split = _activation_elements(config, t)
    spread = t if layout.sequence_parallel else 1  # what tensor parallelism leaves whole, split by sequence
    per_block = (whole / spread + split) * compute_bytes
    if config.dropout > 0:
        per_block += 2 * config.n_embd / spread  # the two residual dropout masks, one byte per element
    if layout.activation_checkpointing:
        kept = blocks * config.n_embd / spread * compute_bytes + per_block  # block inputs, one block recomputed
    else:
        kept = blocks * per_block
    head = 2 * config.n_embd * compute_bytes + 4 * config.vocab_size / t
    if compute_bytes != 4:
        head += compute_bytes * config.vocab_size / t  # the logits before their float32 copy
    last_stage = kept + head if p > 1 else 0.0
    stage_activations = max(kept + (head if p == 1 else 0.0), last_stage)
    in_flight = 1 if p == 1 else (layout.microbatches if layout.schedule == "gpipe" else min(p, layout.microbatches))
    activations = tokens * stage_activations * in_flight
    return MemoryEstimate(
        parameters=int(params / shard),
        weights=weights,
        gradients=gradients,
        optimizer=optimizer_bytes,
        gathered=gathered,
        activations=activations,
    )


TABLE_MODELS = {
    "gpt2-124m": dict(micro_batch=16, seq_len=1024),
    "llama3.2-1b": dict(micro_batch=4, seq_len=4096),
    "llama3-8b": dict(micro_batch=1, seq_len=8192),
}
TABLE_LAYOUTS = {
    "DDP x 8": Layout(data_parallel=8, sharded=False),
    "FSDP2 x 8": Layout(data_parallel=8),
    "FSDP2 x 8, recompute": Layout(data_parallel=8, activation_checkpointing=True),
    "FSDP2 x 4, TP 2": Layout(data_parallel=4, tensor_parallel=2),
    "FSDP2 x 8, TP 2, PP 2 (32 GPUs, 1F1B, 8 micro-batches)": Layout(
        data_parallel=8, tensor_parallel=2, pipeline_parallel=2, microbatches=8
    ),
}


def table() -> str:
    """GiB per GPU for the documentation's models and layouts (bf16-mixed, AdamW)."""
    names = list(TABLE_LAYOUTS)
    lines = [
        "| model (micro-batch x context) | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for arch, shape in TABLE_MODELS.items():
        config = resolve_config(arch)
        cells = [
            f"{estimate_memory(config, layout=layout, **shape).total / 2**30:,.1f}" for layout in TABLE_LAYOUTS.values()
        ]
        lines.append(f"| {arch} ({shape['micro_batch']} x {shape['seq_len']:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default=None, help="a preset; without it, print the documentation's table")
    parser.add_argument("--micro_batch", type=int, default=1)
    parser.add_argument("--seq_len", type=int, default=None, help="default: the model's context")
    parser.add_argument("--data_parallel", type=int, default=1)
    parser.add_argument("--ddp", action="store_true", help="DDP (a full copy per process) instead of FSDP2")
    parser.add_argument("--tensor_parallel", type=int, default=1)
    parser.add_argument("--pipeline_parallel", type=int, default=1)
    parser.add_argument("--microbatches", type=int, default=1)
    parser.add_argument("--schedule", choices=["gpipe", "1f1b"], default="1f1b")
    parser.add_argument("--activation_checkpointing", action="store_true")
    parser.add_argument("--sequence_parallel", action="store_true", help="with --tensor_parallel > 1")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed", "bf16-true"], default="bf16-mixed")
    parser.add_argument("--optimizer", choices=["adamw", "adamw8bit", "muon"], default="adamw")
    args = parser.parse_args(argv)
    if args.arch is None:
        print(table())
        return
    config = resolve_config(args.arch)
    layout = Layout(
        data_parallel=args.data_parallel,
        sharded=not args.ddp,
        tensor_parallel=args.tensor_parallel,
        pipeline_parallel=args.pipeline_parallel,
        microbatches=args.microbatches,
        schedule=args.schedule,
        activation_checkpointing=args.activation_checkpointing,
        sequence_parallel=args.sequence_parallel,
    )
    e = estimate_memory(
        config, args.micro_batch, args.seq_len or config.block_size, layout, args.precision, args.optimizer
    )
    gib = 2**30
    print(
        f"{args.arch}: {e.parameters:,} parameters on this process; weights {e.weights / gib:.2f} GiB, "
        f"gradients {e.gradients / gib:.2f}, optimizer {e.optimizer / gib:.2f}, gathered/buckets "
        f"{e.gathered / gib:.2f}, activations {e.activations / gib:.2f}; total {e.total / gib:.2f} GiB per process"
    )


if __name__ == "__main__":
    main()
