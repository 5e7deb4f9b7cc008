"""The divergence guard: a run whose loss or gradients blow up does not go on, or end, silently.

Every optimizer step (on GPU every ``check_every_n_steps``, so that the check adds no host-device
synchronisation beyond what logging does) the guard looks, before the update is applied, at the
step's mean loss and the gradient norm. A step is *bad* when either is NaN or infinite, when the loss
is above ``max_loss_factor`` x ln(vocabulary) (a model that bad has left the uniform-guess loss far
behind, upwards), or when it spikes above ``spike_factor`` x the median of the last ``window`` good
steps. What happens then is the ``policy``:

- ``skip``: the update is dropped (the step and its data count, the weights do not change), with a line;
  after ``max_skips_in_a_row`` bad steps in a row it stops as ``stop`` does.
- ``rollback`` (default): bad steps are skipped; after ``patience`` in a row the weights and optimizer
  state of the last good snapshot (kept in CPU memory every ``snapshot_every_n_steps``) come back, the
  learning rate is multiplied by ``lr_factor``, and training goes on with the next data; after
  ``max_rollbacks`` it stops as ``stop`` does.
- ``stop``: the run ends with one message (step, loss, the parameter with the largest or first
  non-finite gradient, and what to try) and a non-zero exit; the weights are those of the last good step.

Under data parallelism every process takes the same decision: the loss is averaged over processes and
the gradients are already reduced.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from litllm.errors import UserError
from litllm.train.optim import full_value, gradient_norm


class DivergenceError(UserError):
    """Training diverged and the guard's policy says stop."""


class DivergenceGuard(Callback):
    """Detect non-finite or exploding losses and gradients before they reach the weights.

    Args:
        policy: ``rollback``, ``skip`` or ``stop`` (see the module documentation); ``off`` checks nothing.
        spike_factor: A loss above this multiple of the recent median is a spike.
        window: Good steps the median is taken over (spikes are only judged once it is full).
        max_loss_factor: A loss above this multiple of ln(vocabulary size) is divergence (0: no ceiling).
        patience: Consecutive bad steps before a rollback.
        lr_factor: Learning-rate multiplier applied at each rollback.
        max_rollbacks: Rollbacks before giving up (then the run stops).
        max_skips_in_a_row: With ``skip``, consecutive skipped steps before the run stops (a run that
            cannot take a single good step has diverged for good).
        snapshot_every_n_steps: How often a good step's trainable weights and optimizer state are copied
            to CPU memory for ``rollback``.
        check_every_n_steps: On GPU, check every this many steps (None: the trainer's
            ``log_every_n_steps``); on CPU every step is checked (it costs no synchronisation there).
    """

    def __init__(
        self,
        policy: Literal["rollback", "skip", "stop", "off"] = "rollback",
        spike_factor: float = 3.0,
        window: int = 50,
        max_loss_factor: float = 2.0,
        patience: int = 3,
        lr_factor: float = 0.1,
        max_rollbacks: int = 10,
        max_skips_in_a_row: int = 20,
        snapshot_every_n_steps: int = 100,
        check_every_n_steps: int | None = None,
    ) -> None:
        self.policy, self.spike_factor, self.max_loss_factor = policy, spike_factor, max_loss_factor
        self.patience, self.lr_factor, self.max_rollbacks = patience, lr_factor, max_rollbacks
        self.max_skips_in_a_row = max_skips_in_a_row
        self.snapshot_every_n_steps, self.check_every_n_steps = snapshot_every_n_steps, check_every_n_steps
        self.history: deque[float] = deque(maxlen=window)
        self.skipped = self.rollbacks = self._bad_in_a_row = 0
        self._losses: list[torch.Tensor] = []
        self._snapshot: tuple[int, list[torch.Tensor], dict] | None = None
        self._params: list[torch.nn.Parameter] = []
        # (on CPU, loss ceiling): fixed for a run, so worked out in on_train_start, not at every step.
        self._fixed: tuple[bool, float | None] | None = None

    # ------------------------------------------------------------------ what a step looked like
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Each costs tens of microseconds of Python when asked at every step (LightningModule.device, the log).
        self._fixed = None
        self._fixed = self._run_facts(pl_module)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        # One entry per micro-batch: the module's mean loss per token, not the scaled/summed loss backward sees.
        mean = getattr(pl_module, "train_loss", None)
        self._losses.append(mean if mean is not None else loss.detach())

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        losses, self._losses = self._losses, []
        if self.policy == "off" or not self._checks(trainer, pl_module) or not losses:
            return
        # The parameters the optimizer updates, from its groups: walking the module tree each step costs
        # as much as the check itself on small models (and under FSDP2 only these are the live shards).
        self._params = [p for group in optimizer.param_groups for p in group["params"]]
        # One micro-batch (no gradient accumulation), the usual case, needs no stack and mean.
        mean_loss = losses[0].float() if len(losses) == 1 else torch.stack([x.float() for x in losses]).mean()
        if trainer.world_size > 1:  # (a copy: the reduction is in place, and losses[0] is the module's train_loss)
            mean_loss = trainer.strategy.reduce(mean_loss.clone(), reduce_op="mean")
        # The module's norm is computed once per step and reused for logging and clipping.
        shared = getattr(pl_module, "gradient_norm", None)
        norm = shared(optimizer) if callable(shared) else gradient_norm(self._params)
        value, grad_norm = float(mean_loss), float(full_value(norm))
        why = self._why_bad(value, grad_norm, pl_module)
        if why is None:
            self._good_step(trainer, pl_module, optimizer, value)
            return
        self._bad_in_a_row += 1
        if self.policy == "stop":
            self._stop(trainer, pl_module, value, why)
        if self.policy == "skip" and self._bad_in_a_row > self.max_skips_in_a_row:
            self._stop(trainer, pl_module, value, f"{why}, {self._bad_in_a_row} steps in a row")
        if self.policy == "rollback" and self._bad_in_a_row >= self.patience:
            self._rollback(trainer, pl_module, optimizer, value, why)
        else:
            self._skip(trainer, pl_module, value, why)

    def _checks(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        if self._run_facts(pl_module)[0]:
            return True
        every = self.check_every_n_steps or trainer.log_every_n_steps
        return trainer.global_step % every == 0

    def _why_bad(self, loss: float, grad_norm: float, pl_module: L.LightningModule) -> str | None:
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if not math.isfinite(grad_norm):
            return f"the gradient norm is {grad_norm}"
        ceiling = self._run_facts(pl_module)[1]
        if ceiling is not None and loss > ceiling:
            return f"the loss {loss:.4g} is above {self.max_loss_factor:g} x ln(vocabulary) = {ceiling:.3g}"
        if len(self.history) == self.history.maxlen:
            median = statistics.median(self.history)
            if loss > self.spike_factor * median:
                return f"the loss {loss:.4g} spiked above {self.spike_factor:g} x the recent median {median:.4g}"
        return None

    def _run_facts(self, pl_module: L.LightningModule) -> tuple[bool, float | None]:
        """Whether the model trains on CPU, and the loss ceiling ``max_loss_factor`` x ln(vocabulary) (None
        without a factor or a model config); as on_train_start saw them, when it has run."""
        if self._fixed is not None:
            return self._fixed
        config = getattr(pl_module, "config", None)
        ceiling = (
            self.max_loss_factor * math.log(config.vocab_size) if self.max_loss_factor and config is not None else None
        )
        return pl_module.device.type == "cpu", ceiling

    # ------------------------------------------------------------------ what the guard does
    def _good_step(self, trainer, pl_module, optimizer, loss: float) -> None:
        self._bad_in_a_row = 0
        self.history.append(loss)
        if self.policy == "rollback" and (
            self._snapshot is None or trainer.global_step - self._snapshot[0] >= self.snapshot_every_n_steps
        ):
            self._take_snapshot(trainer, optimizer)

    def _take_snapshot(self, trainer: L.Trainer, optimizer: torch.optim.Optimizer) -> None:
        """Copy this step's trainable weights and optimizer state to CPU memory, into the previous snapshot's
        tensors when they have the same shapes: a snapshot then never holds two copies in host memory while
        it is taken (for a large model, the size of its weights and optimizer state) nor allocates new memory."""
        previous = self._snapshot
        weights = _copies(self._params, previous[1] if previous else None)
        live = optimizer.state_dict()
        state = _copies(_leaves(live), _leaves(previous[2]) if previous else None)
        self._snapshot = (trainer.global_step, weights, _with_leaves(live, iter(state)))

    def _skip(self, trainer, pl_module, loss: float, why: str) -> None:
        for param in self._params:
            param.grad = None  # AdamW leaves a parameter without a gradient untouched
        self.skipped += 1
        _say(trainer, f"step {trainer.global_step}: {why}; update skipped ({self.skipped} so far)")

    def _rollback(self, trainer, pl_module, optimizer, loss: float, why: str) -> None:
        if self._snapshot is None or self.rollbacks >= self.max_rollbacks:
            self._stop(trainer, pl_module, loss, f"{why}, after {self.rollbacks} rollback(s)")
        step, weights, state = self._snapshot
        with torch.no_grad():
            for param, saved in zip(self._params, weights):
                _local(param).copy_(saved)
                param.grad = None
        optimizer.load_state_dict(_restored(state, optimizer.state_dict()))
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            scheduler.base_lrs = [lr * self.lr_factor for lr in scheduler.base_lrs]
        for group in optimizer.param_groups:
            group["lr"] *= self.lr_factor
        self.rollbacks += 1
        self._bad_in_a_row = 0
        self.history.clear()
        _say(
            trainer,
            f"step {trainer.global_step}: {why} {self.patience} steps in a row; rolled back to the weights "
            f"of step {step}, learning rate x{self.lr_factor:g} (rollback {self.rollbacks} of {self.max_rollbacks})",
        )

    def _stop(self, trainer, pl_module, loss: float, why: str) -> None:
        name, grad = _worst_gradient(pl_module)
        for param in pl_module.parameters():
            param.grad = None
        raise DivergenceError(
            f"training diverged at step {trainer.global_step}: {why} (largest gradient: {name}, {grad}). "
            "Try a lower model.learning_rate (litllm lr-find), trainer.gradient_clip_val 1.0, or a longer "
            "model.warmup_steps; see docs/troubleshooting.md"
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """No checkpoint is written with NaN or infinite weights (whatever the policy, unless ``off``)."""
        if self.policy == "off":
            return
        for name, tensor in checkpoint.get("state_dict", {}).items():
            if tensor.is_floating_point() and not bool(torch.isfinite(_local(tensor)).all()):
                raise DivergenceError(
                    f"not writing a checkpoint at step {trainer.global_step}: weight {name!r} holds NaN or "
                    "infinite values (the run diverged); see docs/troubleshooting.md"
                )

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "rollbacks": self.rollbacks, "history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped, self.rollbacks = state_dict["skipped"], state_dict["rollbacks"]
        self.history.extend(state_dict["history"])


def _say(trainer: L.Trainer, message: str) -> None:
    if trainer.is_global_zero:
        print(f"litllm: divergence guard: {message}", file=sys.stderr)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This process's part of a parameter (FSDP2 shards parameters as DTensors)."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _copies(tensors: list[torch.Tensor], into: list[torch.Tensor] | None) -> list[torch.Tensor]:
    """CPU copies of ``tensors`` (this process's parts), written into ``into`` when it holds tensors of the
    same shapes and dtypes (the previous snapshot's, never handed to the optimizer), else new ones."""
    sources = [_local(t).detach() for t in tensors]
    if (
        into is None
        or len(into) != len(sources)
        or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(into, sources))
    ):
        return [source.to("cpu", copy=True) for source in sources]
    for buffer, source in zip(into, sources):
        buffer.copy_(source)
    return into


def _leaves(value: Any) -> list[torch.Tensor]:
    """The tensors in nested dicts, lists and tuples (a state dict), in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _leaves(v)]
    return []


def _with_leaves(value: Any, leaves: Iterator[torch.Tensor]) -> Any:
    """``value`` rebuilt (new containers) with its tensors replaced, in ``_leaves`` order, by ``leaves``."""
    if isinstance(value, torch.Tensor):
        return next(leaves)
    if isinstance(value, dict):
        return {k: _with_leaves(v, leaves) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_with_leaves(v, leaves) for v in value)
    return value


def _restored(saved: Any, live: Any) -> Any:
    """The snapshot's optimizer state (``saved``: CPU copies of each process's part) as the optimizer holds
    its state now (``live``): on its device, and as a DTensor where the state is sharded (FSDP2, which the
    optimizer needs: it refuses a mix of plain and sharded tensors). Always copies: on CPU
    ``load_state_dict`` keeps the very tensors it is given and the optimizer updates them in place, so
    handing over the snapshot's own would make it drift and a second rollback would not restore it."""
    saved_leaves, live_leaves = _leaves(saved), _leaves(live)
    if len(saved_leaves) != len(live_leaves):  # a snapshot from before the first update: no state to place
        live_leaves = [None] * len(saved_leaves)
    restored = []
    for copy, now in zip(saved_leaves, live_leaves):
        if now is not None and hasattr(now, "to_local"):
            from torch.distributed.tensor import DTensor

            local = copy.to(now.to_local().device, copy=True)
            restored.append(
                DTensor.from_local(
                    local, now.device_mesh, now.placements, run_check=False, shape=now.shape, stride=now.stride()
                )
            )
        else:
            restored.append(copy.to(now.device if now is not None else copy.device, copy=True))
    return _with_leaves(saved, iter(restored))


def _worst_gradient(pl_module: L.LightningModule) -> tuple[str, str]:
    """The parameter with the first non-finite gradient, else the largest gradient norm."""
    worst, worst_norm = "none", -1.0
    for name, param in pl_module.named_parameters():
        if param.grad is None:
            continue
        norm = float(_local(param.grad).float().norm())
        if not math.isfinite(norm):
            return name, f"norm {norm}"
        if norm > worst_norm:
            worst, worst_norm = name, norm
    return worst, f"norm {worst_norm:.4g}"
