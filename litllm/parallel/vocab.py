"""Vocabulary-parallel cross-entropy: the loss of logits whose vocabulary is split over a tensor-parallel group.

Under tensor parallelism the head is split by output (``litllm.parallel.tensor``): process r of the group
computes the logits of its slice of the vocabulary only, so the (batch x time x vocabulary) logits, the
largest activation of a small model and a large one of any, are never whole on one process. The loss
needs three numbers per token from the whole vocabulary, each one all-reduce of a (batch x time) tensor
over the group, Megatron's way:

    max  = max over processes of the local max        (for a stable exp; no gradient flows through it)
    sum  = sum over processes of sum(exp(logit - max))
    pick = the target's logit - max, from the process whose slice holds the target (0 from the others)
    loss = log(sum) - pick

Its gradient with respect to this process's logits is ``softmax - onehot`` on the slice: local, no
communication in backward. The logits arrive as a ``DTensor`` sharded on the last dimension (the head's
output); ``cross_entropy`` takes those or plain logits alike, so the losses of pretraining, SFT and DPO
read the same under every layout.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.tensor import DTensor, Shard  # (imported once: the check runs every training step)


def is_vocab_parallel(logits: torch.Tensor) -> bool:
    """Whether ``logits`` is a DTensor split over its last (vocabulary) dimension."""
    return isinstance(logits, DTensor) and any(
        isinstance(p, Shard) and p.dim in (-1, logits.dim() - 1) for p in logits.placements
    )


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean", compiled: bool = False
) -> torch.Tensor:
    """Cross-entropy (float32) of ``logits`` (..., V) against ``labels`` (...), positions labelled -100 left out.

    ``reduction``: ``mean`` over the labelled positions, ``sum``, or ``none`` (one loss per position, 0 where
    the label is -100). Logits split over the vocabulary (a DTensor from a vocabulary-parallel head) give
    the same values as whole ones. ``compiled``: whole logits go through ``torch.compile``'s fused kernel
    (no float32 copy of the logits, one pass for log-softmax and its gradient; what ``model.compile`` adds
    to the backbone's compilation).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")
    if not is_vocab_parallel(logits):
        return (_compiled_cross_entropy() if compiled else _cross_entropy)(logits, labels, reduction)
    flat_labels = labels.flatten()
    local = logits.to_local().flatten(0, -2).float()
    mesh = logits.device_mesh
    group, rank = mesh.get_group(), mesh.get_local_rank()
    start = rank * math.ceil(logits.size(-1) / mesh.size())  # DTensor's split: torch.chunk's sizes
    losses = _VocabParallelCrossEntropy.apply(local, flat_labels, start, group)
    if reduction == "none":
        return losses.view(labels.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (flat_labels != -100).sum()  # (as F.cross_entropy: nan when nothing is labelled)


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    losses = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100, reduction=reduction)
    return losses.view(labels.shape) if reduction == "none" else losses


@functools.cache
def _compiled_cross_entropy():
    return torch.compile(_cross_entropy)


def whole_logits(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` with the whole vocabulary on every process (gathered when split; e.g. to sample a token)."""
    return logits.full_tensor() if is_vocab_parallel(logits) else logits


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Per-position losses of this process's vocabulary slice ``local`` (N, V / tp) of the whole logits."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, labels: torch.Tensor, start: int, group) -> torch.Tensor:
        labelled = labels != -100
        target = labels - start
        here = labelled & (target >= 0) & (target < local.size(-1))
        target = target.masked_fill(~here, 0)
        top = local.max(dim=-1).values
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=group)
        shifted = local - top[:, None]
        exp = shifted.exp()
        total = exp.sum(dim=-1)
        dist.all_reduce(total, group=group)
        picked = shifted.gather(-1, target[:, None]).squeeze(-1) * here
        dist.all_reduce(picked, group=group)
        ctx.save_for_backward(exp.div_(total[:, None]), target, here, labelled)
        return (total.log() - picked) * labelled

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        softmax, target, here, labelled = ctx.saved_tensors
        grad_local = softmax  # d loss / d logit = softmax - onehot(target), on this process's slice
        rows = torch.arange(grad_local.size(0), device=grad_local.device)
        grad_local[rows, target] -= here.to(grad_local.dtype)
        grad_local.mul_((grad * labelled)[:, None])
        return grad_local, None, None, None
