"""SLURM's time-limit signal and pre-emption, through ``litllm fit`` run as a SLURM job would run it (faked).

The job's environment has SLURM's variables (one task), so Lightning picks its ``SLURMEnvironment`` with
auto-requeue on, and a fake ``scontrol`` on ``PATH`` that records its arguments. At the end of step
STOP_AT the test signals the run:

- SIGUSR1, what ``#SBATCH --signal=SIGUSR1@90`` sends before the time limit: the run stops at that step,
  writes ``checkpoints/interrupted.ckpt``, runs ``scontrol requeue <job id>`` once, writes no Lightning
  ``hpc_ckpt_*.ckpt`` (the signal is handled once, by litllm) and exits 143. The requeued job, the same
  command with ``--ckpt_path last``, continues on the losses of a run never stopped, dropout included.
- SIGTERM, what pre-emption and ``scancel`` send: the same checkpoint and no requeue (SLURM requeues a
  pre-empted job itself); the restarted job (``SLURM_RESTART_COUNT=1``) resumes without any flag.
- Two tasks (DDP over gloo, started as ``srun`` would), only one of them signalled: both stop after the
  same step and the job is requeued once.

Each run is a process of its own (a signal to pytest itself would stop the test session).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from integration.test_cli_fit import column, read_metrics, tiny_fit_args
from integration.test_ddp_reliability import env

pytestmark = pytest.mark.integration
STEPS, STOP_AT, JOB = 8, 4, "4242"
DROPOUT = ("--model.arch_overrides", "{block_size: 32, dropout: 0.1}")


def slurm_env(tmp: Path, scontrol_log: Path, **extra: str) -> dict[str, str]:
    """The variables a one-task ``sbatch`` job sees, and ``tmp/bin`` (the fake ``scontrol``) first on PATH."""
    fake = tmp / "bin"
    if not (fake / "scontrol").exists():
        fake.mkdir(exist_ok=True)
        (fake / "scontrol").write_text('#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\n')
        (fake / "scontrol").chmod(0o755)
    variables = {
        "SLURM_JOB_ID": JOB,
        "SLURM_JOB_NAME": "pretrain",  # not "bash" or "interactive": Lightning then treats the job as SLURM's
        "SLURM_NTASKS": "1",
        "SLURM_NNODES": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
    }
    return {
        **env(),
        **variables,
        **extra,
        "SCONTROL_LOG": str(scontrol_log),
        "PATH": os.pathsep.join([str(fake), os.environ.get("PATH", "")]),
    }


def start(tmp: Path, root: Path, cache: Path, job_env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, Path]:
    """``litllm fit`` of the tiny Shakespeare run in its own process; its stderr goes to ``root``.log."""
    command = [sys.executable, "-m", "litllm", *tiny_fit_args(root, cache, STEPS, *DROPOUT, *extra)]
    log = root.with_suffix(".log")
    with open(log, "a") as err:
        proc = subprocess.Popen(command, env=job_env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=err, text=True)
    return proc, log


def finish(proc: subprocess.Popen, log: Path, code: int = 0) -> str:
    try:
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == code, text[-3000:]
    return text


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The losses of a run never stopped (under the same fake SLURM; its own cache, so it can run while
    the first stopped run does): a function that waits for the run the first time it is called."""
    tmp = tmp_path_factory.mktemp("whole")
    proc, log = start(tmp, tmp / "whole", tmp / "cache", slurm_env(tmp, tmp / "scontrol.log"))
    losses: dict[int, float] = {}

    def get() -> dict[int, float]:
        if not losses:
            finish(proc, log)
            losses.update(column(read_metrics(tmp / "whole"), "train/loss"))
            assert not (tmp / "scontrol.log").exists()  # a run that was not signalled requeues nothing
        return losses

    yield get
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The stopped and resumed jobs' data cache (they run one after the other; the tokenizer is trained once)."""
    return tmp_path_factory.mktemp("slurm-cache")


def recorded(scontrol_log: Path) -> list[str]:
    return scontrol_log.read_text().splitlines() if scontrol_log.exists() else []


@pytest.mark.parametrize("how", ["SIGUSR1", "SIGTERM"])
def test_slurm_signal_saves_requeues_and_the_next_job_resumes_exactly(how, whole, cache, tmp_path):
    root, markers, scontrol_log = tmp_path / "run", tmp_path / "markers", tmp_path / "scontrol.log"
    wait = (
        "--trainer.callbacks+=integration.faults.WaitForSignalAt",
        f"--trainer.callbacks.step={STOP_AT}",
        f"--trainer.callbacks.marker_dir={markers}",
    )
    proc, log = start(tmp_path, root, cache, slurm_env(tmp_path, scontrol_log), *wait)
    deadline = time.monotonic() + 240
    while not (markers / "rank0").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the run never reached step {STOP_AT}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    os.kill(proc.pid, getattr(signal, how))
    (markers / "go").touch()
    err = finish(proc, log, code=143)

    saved = root / "checkpoints" / "interrupted.ckpt"
    assert torch.load(saved, map_location="cpu", weights_only=True)["global_step"] == STOP_AT
    assert f"at step {STOP_AT}: checkpoint written to {saved}" in err
    assert not list(tmp_path.rglob("hpc_ckpt_*.ckpt"))  # Lightning's own handler did not save on top
    requeues = recorded(scontrol_log)
    if how == "SIGUSR1":
        assert requeues == [f"requeue {JOB}"]
        assert f"SLURM job {JOB} requeued" in err
        # The job script's own command, run again by SLURM.
        resumed_env, resume_flag = slurm_env(tmp_path, scontrol_log, SLURM_RESTART_COUNT="1"), ("--ckpt_path", "last")
    else:
        assert requeues == []  # scancel or pre-emption: requeueing is SLURM's decision, not the run's
        resumed_env, resume_flag = slurm_env(tmp_path, scontrol_log, SLURM_RESTART_COUNT="1"), ()

    err = finish(*start(tmp_path, root, cache, resumed_env, *resume_flag))
    if not resume_flag:
        assert "SLURM job restarted (1 time(s)): resuming as with --ckpt_path last" in err
    assert f"resuming from {saved} (step {STOP_AT})" in err
    assert not saved.exists()  # the finished run removed it
    assert recorded(scontrol_log) == requeues  # the job that finished asked for nothing more
    losses = whole()
    resumed = {s: v for s, v in column(read_metrics(root), "train/loss") if s >= STOP_AT}
    assert sorted(resumed) == [s for s in sorted(losses) if s >= STOP_AT] and len(resumed) >= STEPS - STOP_AT - 1
    for step, loss in resumed.items():
        assert loss == losses[step], (step, loss, losses[step])  # bit-exact, dropout included


def test_two_tasks_stop_at_the_same_step_when_one_gets_the_signal(cache, tmp_path):
    """Two tasks as ``srun`` starts them (SLURM_PROCID 0 and 1, DDP over gloo). SLURM signals every task,
    but not at the same instant: here only task 1 gets SIGUSR1 at step STOP_AT. Both must stop after that
    same step (or task 0 would wait forever in the next step's all-reduce), one checkpoint is written and
    only task 0 requeues the job."""
    root, markers, scontrol_log = tmp_path / "run", tmp_path / "markers", tmp_path / "scontrol.log"
    args = tiny_fit_args(
        root, cache, STEPS, *DROPOUT,
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.callbacks+=integration.faults.WaitForSignalAt",
        f"--trainer.callbacks.step={STOP_AT}", f"--trainer.callbacks.marker_dir={markers}",
    )  # fmt: skip
    shared = slurm_env(tmp_path, scontrol_log, SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2")
    tasks, logs = [], []
    for task in (0, 1):
        job_env = {**shared, "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task)}
        logs.append(tmp_path / f"task{task}.log")
        with open(logs[-1], "w") as err:
            tasks.append(
                subprocess.Popen(
                    [sys.executable, "-m", "litllm", *args],
                    env=job_env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )  # fmt: skip
            )
    try:
        deadline = time.monotonic() + 240
        while not all((markers / f"rank{task}").exists() for task in (0, 1)):
            if any(t.poll() is not None for t in tasks) or time.monotonic() > deadline:
                pytest.fail(f"the tasks never reached step {STOP_AT}:\n{logs[0].read_text()[-2000:]}")
            time.sleep(0.05)
        os.kill(tasks[1].pid, signal.SIGUSR1)
        (markers / "go").touch()
        for task, log in zip(tasks, logs):
            task.wait(timeout=120)
            assert task.returncode == 143, log.read_text()[-3000:]
    finally:
        for task in tasks:
            if task.poll() is None:
                task.kill()
                task.wait()
    saved = root / "checkpoints" / "interrupted.ckpt"
    assert torch.load(saved, map_location="cpu", weights_only=True)["global_step"] == STOP_AT
    assert recorded(scontrol_log) == [f"requeue {JOB}"]
    assert f"SLURM job {JOB} requeued" in logs[0].read_text()
    assert not list(tmp_path.rglob("hpc_ckpt_*.ckpt"))
