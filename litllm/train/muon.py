"""Muon for the hidden matrices, AdamW for the rest, as one ``torch.optim.Optimizer``.

Muon (Keller Jordan 2024; ``torch.optim.Muon``) replaces each update of a weight matrix by the nearest
semi-orthogonal matrix of its momentum (Newton-Schulz iterations), so every direction of the matrix
moves at the same rate. It is meant for the 2-D weights inside the blocks (attention ``qkv``/``proj``,
MLP ``gate``/``up``/``down``); embeddings, the head, norm gains and biases stay on AdamW.

``MuonWithAdamW`` holds both and steps both, so Lightning sees one optimizer: automatic optimization,
gradient clipping, accumulation, checkpoints and one LR scheduler work unchanged. Its ``param_groups``
are AdamW's groups followed by Muon's (the same dicts the two inner optimizers step with), so a
``LambdaLR`` scales every group by the same multiplier from its own initial rate: AdamW's from
``model.learning_rate``, Muon's from ``model.muon_lr``. Its ``state`` is one dict shared by both.

On the CPU the Newton-Schulz iterations run in float32 (``Float32Muon``): torch runs them in bfloat16,
which GPUs multiply fast but most CPUs do not (no bf16 matrix instructions before Intel Sapphire Rapids
and AMD Zen 4; on this project's AVX2 machine a bf16 matmul is ~40x slower than a float32 one).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from litllm.train.optim import parameter_groups


def muon_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters Muon trains: the trainable 2-D weights inside the transformer blocks.

    The name ``blocks.<i>....`` is the backbone's (``litllm.model.gpt.GPT``); a compiled model's prefix
    (``_orig_mod.``) is allowed for.
    """
    names = []
    for name, param in model.named_parameters():
        path = name.removeprefix("_orig_mod.")
        if param.requires_grad and param.ndim == 2 and path.startswith("blocks."):
            names.append(name)
    return names


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon on the hidden matrices of ``model``, AdamW (decay on matrices only) on every other parameter.

    Args:
        model: The backbone (a ``GPT``, possibly compiled).
        lr: AdamW's peak learning rate.
        betas: AdamW betas.
        eps: AdamW epsilon.
        weight_decay: Decoupled weight decay of both (AdamW: matrices only; Muon: all its matrices).
        muon_lr: Muon's peak learning rate (scaled as ``torch.optim.Muon`` does, by sqrt(max(1, rows/cols))).
        muon_momentum: Muon's momentum (Nesterov).
        adamw_kernel: ``torch.optim.AdamW`` keyword arguments (``foreach``/``fused``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
        muon_lr: float = 0.02,
        muon_momentum: float = 0.95,
        adamw_kernel: dict[str, bool] | None = None,
    ) -> None:
        named = dict(model.named_parameters())
        matrices = [named[n] for n in muon_parameters(model)]
        if not matrices:
            raise ValueError("no 2-D weights inside transformer blocks to train with Muon")
        chosen = {id(p) for p in matrices}
        groups = parameter_groups(model, weight_decay, exclude=chosen)
        self.adamw = torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, **(adamw_kernel or {}))
        on_cpu = all(p.device.type == "cpu" for p in matrices)
        muon = Float32Muon if on_cpu else torch.optim.Muon
        self.muon = muon(matrices, lr=muon_lr, momentum=muon_momentum, weight_decay=weight_decay)
        super().__init__(self.adamw.param_groups + self.muon.param_groups, defaults={})
        self._link()

    def _link(self) -> None:
        """Make the inner optimizers step with this optimizer's group dicts and state (after a load too)."""
        n = len(self.adamw.param_groups)
        self.adamw.param_groups, self.muon.param_groups = self.param_groups[:n], self.param_groups[n:]
        self.adamw.state = self.muon.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load as any optimizer does (groups and per-parameter state), then re-link the inner two."""
        super().load_state_dict(state_dict)
        self._link()

    @torch.no_grad()
    def step(self, closure=None):
        """One step of both: the closure (forward and backward) runs once, before either updates."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.adamw.step()
        self.muon.step()
        return loss


class Float32Muon(torch.optim.Muon):
    """``torch.optim.Muon`` with the Newton-Schulz orthogonalisation in float32 instead of bfloat16.

    The same state (``momentum_buffer``), momentum, Nesterov step, coefficients, learning-rate scaling
    (sqrt(max(1, rows/cols))) and decoupled weight decay as torch's; only the precision of the five
    iterations differs, and float32 is the closer of the two to the exact orthogonalisation. Used on
    the CPU, where bfloat16 matrix products are slow on most processors (measured on an AVX2 machine:
    a 768x192 product chain took 106 ms in bf16 and 2.8 ms in float32, and a Muon step of the
    Shakespeare model 3 s instead of 0.6 s).
    """

    @torch.no_grad()
    def step(self, closure=None):
        """One Muon step of every group (the closure, if any, first)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            momentum, lr = group["momentum"], group["lr"]
            for param, grad, buffer in zip(params, grads, buffers):
                buffer.lerp_(grad, 1 - momentum)
                update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
                update = orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                rows, cols = param.shape[:2]
                param.mul_(1 - lr * group["weight_decay"])
                param.add_(update.to(param.dtype), alpha=-lr * math.sqrt(max(1.0, rows / cols)))
        return loss


def orthogonalize(
    matrix: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration in float32: approximately U V^T of ``matrix = U S V^T``.

    The coefficients maximise the slope at zero rather than converge (singular values end in about
    0.7-1.2, which trains as well as exactly 1 and takes 5 steps instead of ~15).
    """
    a, b, c = coefficients
    x = matrix.float()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T  # iterate on the wide side: the Gram matrix x x^T is the smaller one
    x = x / x.norm().clamp(min=eps)  # spectral norm <= Frobenius norm <= 1: inside the iteration's range
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x
