"""SLURM's requeue signal, handled once and at a step boundary, and the requeue itself.

``#SBATCH --signal=SIGUSR1@90`` has SLURM send SIGUSR1 to every task some time before the job's time
limit. Lightning's own handler (``SLURMEnvironment(auto_requeue=True)``, its default under SLURM) writes
``hpc_ckpt_N.ckpt`` from inside the signal handler, in the middle of whatever the step was doing (under
DDP even starting a collective there), runs ``scontrol requeue`` and lets training go on. litllm's
``InterruptCheckpoint`` takes the signal over with a ``RequeueSignal``: the handler only sets a flag,
the run stops at the end of the current optimizer step (every process at the same step), writes its
interrupted checkpoint as for SIGTERM, and only then does process 0 requeue the job. The requeued job
(``SLURM_RESTART_COUNT`` > 0) resumes from that checkpoint like any other resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.exceptions import SIGTERMException


def say(message: str) -> None:
    """One ``litllm:`` line on stderr, from process 0 only."""
    # RANK: Lightning's launcher and torchrun; SLURM_PROCID: tasks started by srun (Lightning sets no RANK then).
    rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))
    if rank == "0" and os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"litllm: {message}", file=sys.stderr)


class RequeueRequested(SIGTERMException):
    """Raised at the end of an optimizer step after SLURM's requeue signal: the run stops as for SIGTERM
    (exit status 143), and ``InterruptCheckpoint`` requeues the job once its checkpoint is written."""


class RequeueSignal:
    """Takes SLURM's requeue signal over from Lightning for one ``fit``, and stops the run at a step boundary.

    ``take_over`` (from a callback's ``setup``, before Lightning registers its signal handlers) switches
    Lightning's handler off and installs a flag-setting one; ``stop_if_requested`` (from the last
    callback's ``on_train_batch_end``) raises ``RequeueRequested`` once the flag is up; ``release`` gives
    the signal and the environment's setting back.
    """

    def __init__(self) -> None:
        self._environment: SLURMEnvironment | None = None  # set while the signal is handled here
        self._previous_handler: Any = None
        self.requested = False  # the signal arrived (set by the handler, acted on at a step's end)
        self._step_at_start = 0

    @property
    def active(self) -> bool:
        return self._environment is not None

    def take_over(self, trainer: L.Trainer) -> None:
        """Handle the requeue signal here if the run is a SLURM job with Lightning's auto-requeue on."""
        environment = trainer._accelerator_connector.cluster_environment  # the object the signal connector reads
        if (
            not isinstance(environment, SLURMEnvironment)
            or not environment.auto_requeue
            or environment.requeue_signal is None
            or threading.current_thread() is not threading.main_thread()  # handlers can only be set from there
        ):
            return
        environment.auto_requeue = False  # Lightning then registers no requeue handler: the signal is handled once
        self._environment, self.requested = environment, False
        self._previous_handler = signal.signal(environment.requeue_signal, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: the signal lands between any two Python operations, possibly mid-step.
        self.requested = True
        if callable(self._previous_handler):  # e.g. requeue_signal=SIGTERM: whoever handled it before
            self._previous_handler(signum, frame)

    def release(self) -> None:
        """Give the signal's previous handler and the environment's ``auto_requeue`` back."""
        if self._environment is None:
            return
        if threading.current_thread() is threading.main_thread():
            signal.signal(self._environment.requeue_signal, self._previous_handler or signal.SIG_DFL)
        self._environment.auto_requeue = True
        self._environment, self._previous_handler = None, None

    def step_starts(self, trainer: L.Trainer) -> None:
        self._step_at_start = trainer.global_step

    def stop_if_requested(self, trainer: L.Trainer) -> None:
        """Raise ``RequeueRequested`` after an optimizer step if any process got the signal."""
        if self._environment is None or trainer.global_step == self._step_at_start:
            return  # not handling the signal, or inside a gradient accumulation (no optimizer step yet)
        requested = self.requested
        if trainer.world_size > 1:
            # SLURM signals every task, but not at the same instant: the processes agree on the step to stop
            # at, or some would wait forever in the next step's collectives. (One 4-byte all-reduce a step;
            # Lightning 2.6 already broadcasts its SIGTERM flag and waits for it at every step under DDP.)
            flag = torch.tensor(float(requested), device=trainer.strategy.root_device)
            requested = bool(trainer.strategy.reduce(flag, reduce_op="sum") > 0)
        if requested:
            raise RequeueRequested


def requeue_slurm_job(trainer: L.Trainer) -> None:
    """``scontrol requeue`` this SLURM job (or array task), from process 0, with one line saying how it went.

    SLURM then ends the job's processes (SIGTERM, which finds the checkpoint already written) and puts
    the job back in the queue with ``SLURM_RESTART_COUNT`` raised.
    """
    if not trainer.is_global_zero:
        return
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}" if array_job else os.environ.get("SLURM_JOB_ID")
    if not job:
        say("SLURM's requeue signal arrived but SLURM_JOB_ID is not set: the job is not requeued")
        return
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        say(f"scontrol requeue {job} failed ({err}): requeue the job by hand and resume with --ckpt_path last")
        return
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        say(f"scontrol requeue {job} failed ({detail}): requeue the job by hand and resume with --ckpt_path last")
        return
    say(f"SLURM job {job} requeued: it resumes from the last checkpoint")


def slurm_restart_count() -> int:
    """How many times SLURM has requeued or restarted this job (0 outside SLURM or in an interactive job)."""
    if not SLURMEnvironment.detect():
        return 0
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0
