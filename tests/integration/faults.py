"""Callbacks that break a run on purpose at a chosen step, for the reliability tests (multi-process too).

They are passed on the command line as users pass callbacks
(``--trainer.callbacks+=integration.faults.HangAt``), with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import save_file

from litllm.train.guard import DivergenceGuard


class HangAt(Callback):
    """At the start of the batch after optimizer step ``step`` (so once that step's checkpoint is written),
    write ``marker_dir/rank<N>`` and wait forever: the test then kills the whole process group."""

    def __init__(self, step: int, marker_dir: str) -> None:
        self.step, self.marker_dir = step, Path(marker_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        (self.marker_dir / f"rank{trainer.global_rank}").write_text(str(trainer.global_step))
        while True:
            time.sleep(1)


class WaitForSignalAt(Callback):
    """At the end of optimizer step ``step`` write ``marker_dir/rank<N>`` and wait (at most 5 minutes) until
    ``marker_dir/go`` exists: the test signals the process first, so the signal is handled at a known step
    (the kernel delivers it before this process can see the file)."""

    def __init__(self, step: int, marker_dir: str) -> None:
        self.step, self.marker_dir = step, Path(marker_dir)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        (self.marker_dir / f"rank{trainer.global_rank}").write_text(str(trainer.global_step))
        deadline = time.monotonic() + 300
        while not (self.marker_dir / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


class PoisonLoss(Callback):
    """Make the loss of process ``rank`` NaN at the given optimizer steps (its logits become NaN there).

    Only one process sees a bad batch, as when one data shard holds a broken sample: a guard that judged
    each process's own loss would take different decisions on different processes.
    """

    def __init__(self, steps: list[int], rank: int = 1) -> None:
        self.steps, self.rank = set(steps), rank
        self._hook = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step in self.steps and trainer.global_rank == self.rank:
            self._hook = pl_module.backbone.norm.register_forward_hook(lambda m, args, out: out * float("nan"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


class SaveRankWeights(Callback):
    """At the end of training each process writes its own weights to ``out_dir/rank<N>.safetensors`` and
    what its divergence guard did to ``out_dir/rank<N>.json``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        model = pl_module.backbone
        state = {k: _full(v).detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
        if model.config.tie_embeddings:
            state.pop("lm_head.weight", None)  # stored once, as the embedding (as in a model directory)
        save_file(state, self.out_dir / f"rank{trainer.global_rank}.safetensors")
        guard = next(c for c in trainer.callbacks if isinstance(c, DivergenceGuard))
        facts = {"global_step": trainer.global_step, "skipped": guard.skipped, "rollbacks": guard.rollbacks}
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(facts))


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A whole tensor from a sharded one (FSDP2's DTensors: collective over the shards' processes)."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
