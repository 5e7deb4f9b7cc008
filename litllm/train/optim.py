"""The optimizer and the learning-rate schedule of every training stage.

AdamW (torch's, or bitsandbytes' 8-bit variant) with decoupled weight decay on matrices only (Muon with
AdamW is in ``litllm.train.muon``), and a linear warmup followed by a decay to a fraction of the peak,
stepped once per optimizer step: cosine all the way (``warmup_cosine``), or warmup-stable-decay
(``warmup_stable_decay``: the peak held, then a short decay at the end).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from litllm.errors import ConfigError


def parameter_groups(
    model: torch.nn.Module, weight_decay: float, exclude: set[int] | None = None
) -> list[dict[str, Any]]:
    """Weight decay on matrices only: biases, norm gains and embedding tables are not decayed.

    Parameters whose ``id`` is in ``exclude`` (those another optimizer trains) are left out, and so is a group
    with no parameters (LoRA's adapters are all matrices): PyTorch's distributed state dicts cannot hold one.
    """
    decay, no_decay = [], []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    # A pipeline stage names its tables itself: the last stage's copy of a tied head is an embedding table.
    embeddings |= {id(p) for p in getattr(model, "embedding_weights", list)()}
    for param in model.parameters():
        if not param.requires_grad or id(param) in (exclude or ()):
            continue
        (decay if param.ndim >= 2 and id(param) not in embeddings else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def adamw_kernel(impl: str, clipping: bool, loss_scaling: bool) -> dict[str, bool]:
    """``torch.optim.AdamW`` keyword arguments for ``impl`` (``auto``, ``fused``, ``foreach``, ``for-loop``).

    ``auto`` picks ``fused`` (one kernel for every tensor's update; on this project's 2-core CPU 5x faster
    than ``foreach`` at 30M parameters) unless gradient clipping meets fp16 loss scaling: a fused AdamW
    unscales the gradients itself, after clipping would have clipped them scaled. litllm clips by norm
    itself (``clip_with_norm``), so bf16-mixed keeps ``fused``, which Lightning's own clipping refuses.
    """
    if impl == "auto":
        impl = "foreach" if clipping and loss_scaling else "fused"
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


DECAY_SHAPES = {
    "linear": lambda p: 1 - p,
    "cosine": lambda p: 0.5 * (1 + math.cos(math.pi * p)),
    "sqrt": lambda p: 1 - math.sqrt(p),
}
"""Shapes of the WSD decay, as the fraction of the way from the floor to the peak at progress ``p`` in [0, 1]."""


def warmup_stable_decay(
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    decay_fraction: float = 0.2,
    decay_shape: Literal["linear", "cosine", "sqrt"] = "sqrt",
) -> Callable[[int], float]:
    """Learning-rate multiplier of warmup-stable-decay (WSD): linear 0 -> 1 over ``warmup_steps``, then 1
    until the last ``decay_fraction`` of ``total_steps``, which decay to ``min_ratio`` in ``decay_shape``.

    ``sqrt`` is ``1 - sqrt(progress)`` (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training
    Beyond Fixed Training Durations": it matched cosine at a 20% decay). The decay may overlap the warmup
    only if the run is shorter than both; the decay then starts after the warmup.
    """
    if not 0.0 < decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in (0, 1], got {decay_fraction}")
    if decay_shape not in DECAY_SHAPES:
        raise ValueError(f"decay_shape must be one of {sorted(DECAY_SHAPES)}, got {decay_shape!r}")
    shape = DECAY_SHAPES[decay_shape]
    decay_start = max(warmup_steps, total_steps - round(decay_fraction * total_steps))
    decay_steps = max(1, total_steps - decay_start)

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, max(0, step - decay_start) / decay_steps)
        return min_ratio + (1 - min_ratio) * shape(progress)

    return multiplier


def lr_schedule(
    kind: Literal["cosine", "wsd"],
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    decay_fraction: float,
    decay_shape: Literal["linear", "cosine", "sqrt"],
) -> Callable[[int], float]:
    """The multiplier of the schedule ``kind`` (``model.lr_schedule``): ``cosine`` or ``wsd``."""
    if kind == "wsd":
        return warmup_stable_decay(warmup_steps, total_steps, min_ratio, decay_fraction, decay_shape)
    if kind != "cosine":
        raise ValueError(f"lr_schedule must be cosine or wsd, got {kind!r}")
    return warmup_cosine(warmup_steps, total_steps, min_ratio)


def configure_optimization(
    model: torch.nn.Module,
    groups: list[dict[str, Any]] | None,
    hp: Any,
    total_steps: int,
    trainer: Any,
    sharded: bool,
) -> dict[str, Any]:
    """``configure_optimizers``' answer for an ``LLMModule``'s hyperparameters ``hp``: the optimizer of
    ``hp.optimizer`` over ``groups`` (AdamW's; Muon groups its own) and the ``hp.lr_schedule`` stepped per
    optimizer step. ``trainer`` (or None) says whether clipping and fp16 loss scaling constrain AdamW's kernel;
    ``sharded`` (FSDP2) refuses Muon, which orthogonalises whole matrices."""
    kernel = adamw_kernel(
        hp.optimizer_impl,
        clipping=trainer is not None and bool(trainer.gradient_clip_val),
        loss_scaling=trainer is not None and str(trainer.precision) == "16-mixed",
    )
    if hp.optimizer == "muon":
        if sharded:
            raise ConfigError(
                "model.optimizer=muon orthogonalises whole matrices, which FSDP shards: "
                "use DDP (strategy: ddp) or model.optimizer=adamw"
            )
        if hp.method != "full":
            raise ConfigError(f"model.optimizer=muon trains full weights, not {hp.method} adapters: use adamw")
        from litllm.train.muon import MuonWithAdamW

        optimizer = MuonWithAdamW(
            model, hp.learning_rate, hp.betas, hp.eps, hp.weight_decay, hp.muon_lr, hp.muon_momentum, kernel
        )
    else:
        optimizer = make_adamw(groups, hp.learning_rate, hp.betas, hp.eps, hp.optimizer == "adamw8bit", kernel)
    multiplier = lr_schedule(
        hp.lr_schedule, hp.warmup_steps, total_steps, hp.min_lr_ratio, hp.decay_fraction, hp.decay_shape
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def scale_gradients(parameters: Iterable[torch.nn.Parameter], scale: torch.Tensor) -> None:
    """Multiply every gradient by ``scale`` (a 0-d tensor) in one fused call."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads:
        # Sharded (DTensor) gradients take a Python number; plain ones the tensor, on their device.
        torch._foreach_mul_(grads, scale.to(grads[0].device) if not hasattr(grads[0], "full_tensor") else float(scale))


def gradient_norm(parameters: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """The total 2-norm of the parameters' gradients, computed as ``clip_grad_norm_`` computes it (the same
    tensors in the same order, so the same bits); a DTensor under FSDP2 (``full_value`` reads it)."""
    return torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])


def full_value(norm: torch.Tensor) -> torch.Tensor:
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm


class OneGradientNorm:
    """LightningModule mixin: an optimizer step's gradient norm is computed once (``gradient_norm``) and shared
    by the divergence guard, the ``train/grad_norm`` metric and clipping by norm, which then gives the same
    result as Lightning's ``clip_grad_norm_``. The module sets ``_grad_norm`` to None when a step starts."""

    _grad_norm: torch.Tensor | None = None

    def gradient_norm(self, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """This step's gradient norm (after ``normalize_by_tokens``, before clipping)."""
        normalize = getattr(self, "normalize_by_tokens", None)
        if normalize is not None:
            normalize()
        if self._grad_norm is None:
            self._grad_norm = gradient_norm(p for group in optimizer.param_groups for p in group["params"])
        return self._grad_norm

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        precision = self.trainer.precision_plugin
        norm = functools.partial(self.gradient_norm, optimizer)  # computed (once a step) only if clipping uses it
        if not clip_with_norm(precision, optimizer, gradient_clip_val, gradient_clip_algorithm, norm):
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def clip_with_norm(
    precision: Any, optimizer: torch.optim.Optimizer, clip_val, algorithm, norm: Callable[[], torch.Tensor]
) -> bool:
    """Clip by ``norm()``, the norm of these gradients, as Lightning's precision plugin would with
    ``clip_grad_norm_``; False (nothing done) where the plugin must clip itself: another algorithm, a
    plugin with its own clipping (DeepSpeed, FSDP1) or an fp16 gradient scaler with an optimizer that
    unscales gradients itself."""
    from lightning.pytorch.plugins.precision import MixedPrecision, Precision

    if not clip_val or clip_val <= 0 or algorithm not in (None, "norm"):
        return False
    if type(precision).clip_gradients not in (Precision.clip_gradients, MixedPrecision.clip_gradients):
        return False
    if type(precision).clip_grad_by_norm is not Precision.clip_grad_by_norm:
        return False
    if getattr(optimizer, "_step_supports_amp_scaling", False) and getattr(precision, "scaler", None) is not None:
        return False  # a fused optimizer unscales fp16 gradients itself: MixedPrecision refuses it, with a message
    torch.nn.utils.clip_grads_with_norm_(list(precision.main_params(optimizer)), clip_val, norm())
    return True
