"""A callback that stops a run the way a person or a cluster does, at a chosen step (for the tests)."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class InterruptAt(Callback):
    """After optimizer step ``step``: raise KeyboardInterrupt (Ctrl-C) or send this process SIGTERM."""

    def __init__(self, step: int, how: str = "sigint") -> None:
        self.step, self.how = step, how

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        if self.how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning stops at the next step, as under SLURM
        else:
            raise KeyboardInterrupt
