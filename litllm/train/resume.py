"""Resuming and interrupting runs: what ``--ckpt_path`` means, and how a stopped run ends.

``--ckpt_path last`` takes the newest of the run's ``last.ckpt`` and the checkpoint written when the run
was interrupted (Ctrl-C, SIGTERM from SLURM or a pre-empted cloud machine, or a crash); with neither it
says where it looked and starts from step 0. A checkpoint file is opened without running any code
(``weights_only``): one that would need code to load is refused, never loaded unsafely.

Under SLURM, the requeue signal (``#SBATCH --signal=SIGUSR1@90``) stops the run at the end of the current
optimizer step, writes the same interrupted checkpoint, then runs ``scontrol requeue``; a requeued job
(``SLURM_RESTART_COUNT`` > 0) started without ``--ckpt_path`` resumes as with ``--ckpt_path last``.
"""

from __future__ import annotations

import os
import pickle
import sys
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litllm.data.sampler import data_parallel_split
from litllm.errors import CheckpointError, UserError
from litllm.parallel.safe_load import SHARDED_META, is_sharded_checkpoint
from litllm.train.slurm import RequeueRequested, RequeueSignal, requeue_slurm_job, slurm_restart_count
from litllm.train.slurm import say as _say

INTERRUPTED = "interrupted"
"""File name (without .ckpt) of the checkpoint written when a run stops early."""


class InterruptCheckpoint(Checkpoint):
    """Save a checkpoint of the last completed step when a run stops early, and say where it is.

    Ctrl-C, SIGTERM (what SLURM and cloud pre-emption send; Lightning turns it into an exception at the
    next step) and any error during training or validation land here. Nothing is written before the
    first optimizer step (there is nothing to keep), and a finished run removes the file. (Not Lightning's
    ``OnExceptionCheckpoint``: with one of those, a plain ``fit`` silently resumes from the last checkpoint.)

    Under SLURM the callback also handles the requeue signal (``litllm.train.slurm``): the run stops at
    the end of the current optimizer step, writes this checkpoint, and then the job is requeued.

    Args:
        dirpath: The run's checkpoint directory.
        filename: File name without ``.ckpt``.
        slurm_requeue: Handle SLURM's requeue signal as above (False: leave it to Lightning's SLURM support).
    """

    def __init__(self, dirpath: str, filename: str = INTERRUPTED, slurm_requeue: bool = True) -> None:
        self.dirpath, self.filename, self.slurm_requeue = dirpath, filename, slurm_requeue
        self._requeue = RequeueSignal()

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath, self.filename + ".ckpt")

    # ------------------------------------------------------------------ SLURM's requeue signal
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before Lightning's signal connector registers its handlers (it reads auto_requeue then).
        if stage == "fit" and self.slurm_requeue:
            self._requeue.take_over(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._requeue.step_starts(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Checkpoint callbacks run after all others, so the state saved on stopping here is that of a
        # periodic checkpoint of this step (ModelCheckpoint saves at this point too): resuming is exact.
        self._requeue.stop_if_requested(trainer)

    # ------------------------------------------------------------------ stopping
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        try:
            saved = self._save(trainer, exception)
            if isinstance(exception, RequeueRequested):
                if saved is False:
                    _say("the SLURM job is not requeued: it would only start again from a run that cannot be saved")
                else:
                    requeue_slurm_job(trainer)
        finally:
            self._requeue.release()

    def _save(self, trainer: L.Trainer, exception: BaseException) -> bool | None:
        """Write the checkpoint: True when written, None when there is nothing to keep, False when refused."""
        if trainer.global_step == 0 or trainer.lightning_module is None:
            return None
        try:
            trainer.save_checkpoint(self.ckpt_path)
        except UserError as err:  # e.g. the divergence guard refusing non-finite weights
            _say(f"no checkpoint written on stopping: {err}")
            return False
        if isinstance(exception, RequeueRequested):
            why = "stopped by SLURM's requeue signal"
        elif isinstance(exception, (KeyboardInterrupt, SystemExit)):
            why = "interrupted"
        else:
            why = "stopped by an error"
        _say(
            f"run {why} at step {trainer.global_step}: checkpoint written to {self.ckpt_path}; "
            "continue with --ckpt_path last"
        )
        return True

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._requeue.release()
        if trainer.state.status != TrainerStatus.INTERRUPTED:  # finished: the interruption is history
            trainer.strategy.remove_checkpoint(self.ckpt_path)


class StepSeed(Callback):
    """Seed torch's random numbers before every training micro-batch from the run's seed, the optimizer
    step, the micro-batch and the process rank.

    Dropout (and LoRA dropout) then draws the same masks at a given step whether the run went straight
    through or was stopped and resumed there, on any number of processes, and whatever else consumed
    random numbers in between (validation, a new data-loader iterator): resuming is bit-exact without
    storing generator states in checkpoints. Costs one ``torch.manual_seed`` per micro-batch.
    """

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        base = int(os.environ.get("PL_GLOBAL_SEED", "0"))  # what seed_everything set
        micro = batch_idx % trainer.accumulate_grad_batches
        # The data-parallel rank: the processes of a tensor-parallel group must draw the same dropout masks.
        rank = data_parallel_split(trainer)[0]
        key = ((base * 1_000_003 + trainer.global_step) * 1_009 + micro) * 4_099 + rank
        torch.manual_seed(key % (2**63))


def resume_candidates(trainer: L.Trainer) -> tuple[list[Path], list[Path]]:
    """The checkpoints ``last`` may mean, and the directories searched for them."""
    found, searched = [], []
    for callback in trainer.callbacks:
        if isinstance(callback, InterruptCheckpoint):
            searched.append(Path(callback.dirpath))
            found.append(Path(callback.ckpt_path))
        elif isinstance(callback, ModelCheckpoint) and callback.dirpath:
            searched.append(Path(callback.dirpath))
            found.extend(Path(callback.dirpath).glob(f"{callback.CHECKPOINT_NAME_LAST}*{callback.FILE_EXTENSION}"))
    return [p for p in found if p.is_file() or is_sharded_checkpoint(p)], sorted(set(searched))


FIXED_ON_RESUME = ("method", "lora_r", "lora_alpha", "lora_targets", "quant_type", "beta", "loss_type")
"""Module settings a resumed run cannot change (the checkpoint's state only makes sense with them)."""
SHAPE_FIELDS_FREE = ("dropout",)
"""Model config fields that may differ on resume (everything else is the architecture)."""
FROM_THE_DATA = ("vocab_size",)
"""Model config fields the data sets after this check (the tokenizer's vocabulary, unless ``model.vocab_size``
is given): compared only when the run sets them; a different tokenizer still fails, naming the tensor."""


def resolve_ckpt_path(trainer: L.Trainer, ckpt_path: str | None, module: L.LightningModule | None = None) -> str | None:
    """The checkpoint to resume from (checked to be a safe, complete file), or None to start at step 0.

    ``None`` in a job SLURM requeued or restarted means ``last``.

    With ``module``, the checkpoint's settings are compared with the run's: the run's own values are
    used and every difference is printed, or refused when it cannot work (architecture, method).
    """
    if ckpt_path is None and (restarts := slurm_restart_count()):
        # A requeued job runs its script again, usually without a resume flag: it continues, as Lightning's
        # SLURM support would, but from the same checkpoints and checks as --ckpt_path last.
        _say(f"SLURM job restarted ({restarts} time(s)): resuming as with --ckpt_path last")
        ckpt_path = "last"
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        found, searched = resume_candidates(trainer)
        if not found:
            where = ", ".join(str(d) for d in searched) or "(no checkpoint directory configured)"
            _say(f"--ckpt_path last: no checkpoint to resume in {where}; training starts at step 0")
            return None
        path = max(found, key=lambda p: (p / SHARDED_META if p.is_dir() else p).stat().st_mtime)
    else:
        path = Path(ckpt_path)
        if not path.is_file() and not is_sharded_checkpoint(path):
            raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no such checkpoint file or sharded checkpoint directory")
    state = load_checkpoint(path)
    if module is not None:
        compare_settings(state, module, path)
    _say(f"resuming from {path} (step {int(state.get('global_step', 0))})")
    return str(path)


def compare_settings(state: dict, module: L.LightningModule, path: Path) -> None:
    """Refuse a resume that would change the architecture or method; print every other changed setting."""
    saved_config = state.get("litllm", {}).get("model_config") or {}
    config = getattr(module, "config", None)
    if saved_config and config is not None:
        own = config.to_dict()
        hparams = getattr(module, "hparams", {})
        for key, value in saved_config.items():
            if key in FROM_THE_DATA and hparams.get(key) is None:
                continue
            if key not in SHAPE_FIELDS_FREE and key in own and own[key] != value:
                raise CheckpointError(
                    f"{path} was trained with model {key}={value!r}, this run has {own[key]!r}: "
                    "a run resumes with the architecture it was trained with"
                )
    saved = {**state.get("hyper_parameters", {})}
    saved.setdefault("init_from", saved.get("checkpoint"))
    for key, value in module.hparams.items():
        if key.startswith("_") or key in ("checkpoint", "init_from", "arch", "arch_overrides") or key not in saved:
            continue
        before = saved[key]
        if isinstance(before, (list, tuple)) and isinstance(value, (list, tuple)):
            before, value = list(before), list(value)
        if before == value:
            continue
        if key in FIXED_ON_RESUME:
            raise CheckpointError(f"{path} was trained with model.{key}={before!r}; it cannot resume with {value!r}")
        _say(f"resuming with model.{key}={value!r} (the checkpoint was trained with {before!r})")


def load_checkpoint(path: Path) -> dict:
    """Open a Lightning checkpoint without running code (tensors memory-mapped); one clear error if it cannot be.

    Of a sharded checkpoint directory, only the settings and step (``meta.pt``) are read: its tensors are
    loaded, resharded, by the strategy that resumes it.
    """
    sharded = is_sharded_checkpoint(path)
    try:
        state = torch.load(path / SHARDED_META if sharded else path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a safe checkpoint: loading it would run code from the file, which litllm never does"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({first})") from None
    if not isinstance(state, dict) or ("state_dict" not in state and not sharded):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict in it)")
    return state


@contextmanager
def nonzero_exit_when_stopped():
    """A run stopped by SIGTERM exits with 143 (Lightning's SIGTERMException would exit with 0)."""
    try:
        yield
    except SIGTERMException:
        sys.exit(143)


def exit_if_interrupted(trainer: L.Trainer) -> None:
    """After ``fit``: a run that did not finish exits non-zero (Ctrl-C already exits with 1 inside Lightning)."""
    if trainer.state.status == TrainerStatus.INTERRUPTED:
        sys.exit(143 if trainer.received_sigterm else 130)
