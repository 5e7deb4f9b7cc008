"""The callback ``time_to_quality.py`` adds to its ``litllm fit`` runs (kept apart from the benchmark so
that its plain-PyTorch reference does not pay for importing Lightning)."""

from __future__ import annotations

import os
import time

import lightning as L
from time_to_quality import LAUNCHED, record  # this module is loaded by the litllm runs only


class HeldOutClock(L.Callback):
    """Records (step, seconds since launch less evaluation time, held-out bits per byte) at each
    validation of a ``litllm fit`` run, and when the first training step starts."""

    def __init__(self) -> None:
        self.launched = float(os.environ[LAUNCHED])
        self.evaluating = 0.0
        self._started: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0 and batch_idx == 0:
            record(0, time.time() - self.launched, float("nan"))

    def on_validation_start(self, trainer, pl_module) -> None:
        self._started = time.time()

    def on_validation_end(self, trainer, pl_module) -> None:
        bpb = trainer.callback_metrics.get("val/bpb")
        if trainer.sanity_checking or bpb is None or self._started is None:
            return
        now = time.time()
        record(trainer.global_step, now - self.launched - self.evaluating - (now - self._started), float(bpb))
        self.evaluating += now - self._started
