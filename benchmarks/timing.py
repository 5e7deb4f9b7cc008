"""Shared by the benchmark scripts (run them as ``python benchmarks/NAME.py``, which puts this folder on the path)."""

from __future__ import annotations

import socket
import time

import lightning as L


class StepTimer(L.Callback):
    """Wall time and tokens of the training steps after ``warmup`` optimizer steps (those pay one-off costs)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, None, None
        self.steps = self.tokens = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.steps += 1
            self.tokens += batch["input_ids"].numel()
            self.end = time.perf_counter()

    @property
    def tokens_per_s(self) -> float:
        """Tokens per second of this process over the timed steps."""
        return self.tokens / (self.end - self.start)


def free_port() -> int:
    """A free TCP port on the loopback address, for MASTER_PORT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
