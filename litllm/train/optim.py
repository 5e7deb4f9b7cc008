"""The optimizer and the learning-rate schedule of every training stage.

AdamW (torch's, or bitsandbytes' 8-bit variant) with decoupled weight decay on matrices only, and a
linear warmup followed by cosine decay to a fraction of the peak, stepped once per optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only: biases, norm gains and embedding tables are not decayed."""
    decay, no_decay = [], []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and id(param) not in embeddings else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw_kernel(impl: str, on_gpu: bool, clipping: bool, mixed_precision: bool) -> dict[str, bool]:
    """``torch.optim.AdamW`` keyword arguments for ``impl`` (``auto``, ``fused``, ``foreach``, ``for-loop``).

    ``auto`` picks ``fused`` on GPU unless gradient clipping meets mixed precision (Lightning refuses
    clipping with a fused optimizer there, since it unscales gradients internally), else ``foreach``.
    """
    if impl == "auto":
        impl = "fused" if on_gpu and not (clipping and mixed_precision) else "foreach"
    if impl == "for-loop":
        return {"foreach": False}
    return {"fused": impl == "fused", "foreach": impl == "foreach"}


def make_adamw(
    groups: list[dict[str, Any]],
    lr: float,
    betas: tuple[float, float],
    eps: float,
    eight_bit: bool,
    kernel: dict[str, bool],
) -> torch.optim.Optimizer:
    if eight_bit:
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(groups, lr=lr, betas=tuple(betas), eps=eps)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, **kernel)


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear 0 -> 1 over ``warmup_steps``, cosine 1 -> ``min_ratio`` by ``total_steps``."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if step >= total_steps:
            return min_ratio
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


def scale_gradients(parameters: Iterable[torch.nn.Parameter], scale: torch.Tensor) -> None:
    """Multiply every gradient by ``scale`` (a 0-d tensor) in one fused call."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads:
        # Sharded (DTensor) gradients take a Python number; plain ones the tensor, on their device.
        torch._foreach_mul_(grads, scale.to(grads[0].device) if not hasattr(grads[0], "full_tensor") else float(scale))
