"""Sharding and activation checkpointing for the backbone.

FSDP2 (``torch.distributed.fsdp.fully_shard``) is applied per transformer block and then at the root,
inside ``configure_model``, when Lightning's ``ModelParallelStrategy`` provides a device mesh. The same
code runs on CPU (gloo) and GPU (NCCL). Activation checkpointing uses the composable
``torch.distributed._composable.checkpoint``, which keeps parameter names, so full checkpoints still load.
"""

from __future__ import annotations

import torch

from litllm.model import GPT


def checkpoint_blocks(model: GPT) -> None:
    """Recompute each block's activations in the backward pass instead of storing them."""
    from torch.distributed._composable import checkpoint

    for block in model.blocks:
        checkpoint(block)


def shard(model: torch.nn.Module, mesh, param_dtype: torch.dtype | None = None, cpu_offload: bool = False) -> None:
    """``fully_shard`` every transformer block, then the root (embeddings, final norm, head).

    With ``param_dtype`` (bf16 on GPU) the gathered parameters are cast for compute while the
    gradients are reduced in fp32. ``cpu_offload`` keeps the shards (and so the optimizer state) on the CPU.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs = {"mesh": mesh}
    if param_dtype is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    if cpu_offload:  # shards, gradients and optimizer state live in CPU memory; compute stays on the device
        kwargs["offload_policy"] = CPUOffloadPolicy()
    blocks = model.get_base_model().blocks if hasattr(model, "get_base_model") else model.blocks
    for block in blocks:
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
