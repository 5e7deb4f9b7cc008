"""Launching a multi-process run from a test: a free loopback port, the environment, and a failure that says why.

Each distributed test starts its run as a subprocess (never DDP inside pytest); Lightning's launcher then
starts the other ranks, which share the run's stdout and stderr. When the run fails, the whole output is
kept in a log file beside the run and the assertion names it, with the lines that say what went wrong:
Python tracebacks, and with ``PYTHONFAULTHANDLER`` set, the Python stack of every thread of a process
that died of a signal (a C++ ``terminate`` in a communication thread shows as SIGABRT, not as a traceback).
A run whose transport lost a peer may be tried once more, with a warning (``run_processes``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRANSPORT_LOST = re.compile(r"Connection (closed|reset) by peer")
NOTABLE = re.compile(r"Error|Exception|Traceback|Fatal Python error|terminate called|what\(\)|Aborted|Killed")


class TransportRetry(UserWarning):
    """A multi-process run was started again after its transport failed (``run_processes``)."""


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the run's rendezvous binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    """This environment plus one thread per process, a rendezvous on a free loopback port, this checkout
    importable, and Python's fault handler on (a process killed by a signal prints its threads' stacks)."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONFAULTHANDLER": "1",
        **extra,
    }


def why_it_failed(returncode: int, output: str, log: Path, budget: int = 6000) -> str:
    """One message for a failed run: how it ended, where its whole output is, what its output says went wrong."""
    ended = f"exited with status {returncode}"
    if returncode < 0:
        try:
            ended = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:  # a signal number Python has no name for
            ended = f"was killed by signal {-returncode}"
    lines = output.splitlines()
    keep: set[int] = set()
    for i, line in enumerate(lines):
        if NOTABLE.search(line):  # with the 3 lines before (a traceback's last frames) and 2 after,
            after = 40 if line.startswith("Fatal Python error") else 3  # or the fault handler's stacks
            keep.update(range(max(0, i - 3), min(len(lines), i + after)))
    excerpt = "\n".join(lines[i] for i in sorted(keep))
    if len(excerpt) > budget // 2:
        excerpt = "...\n" + excerpt[-(budget // 2) :]
    tail = output[-(budget // 2) :]
    return f"the run {ended}; its whole output: {log}\n--- what went wrong:\n{excerpt}\n--- last output:\n{tail}"


def run_processes(
    command: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
    outputs: Sequence[Path] = (),
) -> str:
    """Run ``command`` (which launches its own ranks) to the end, its output (stdout and stderr together, every
    rank's) written to ``log``; returns the output, or fails the test saying why the run failed.

    With ``outputs`` (what the run writes: its directory, its results file), one failure is tried again,
    loudly: the launching process killed by SIGABRT (a C++ abort, not a Python error) while the output shows
    gloo's TCP transport losing a peer. Seen once in about 30 runs of 4 processes on 2 cores, never
    reproduced since. The first attempt's ``outputs`` and log are moved aside (``<name>.first``) so that the
    second run starts from nothing and must pass the same checks; a ``TransportRetry`` warning says so. A run
    that writes where it reads (a resume into its own directory) passes no ``outputs``: it is not retried.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    first: Path | None = None
    for attempt in (1, 2):
        run_env = dict(env) if env is not None else process_env()
        if attempt == 2:
            run_env["MASTER_PORT"] = str(free_port())
        returncode = _run_group(command, log, run_env, timeout, cwd)
        output = log.read_text(errors="replace")
        if returncode == 0:
            return output
        lost_peer = returncode == -signal.SIGABRT and TRANSPORT_LOST.search(output)
        if attempt == 2 or not outputs or not lost_peer:
            break
        first = log.with_name(f"{log.name}.first")
        for path in [log, *outputs]:
            if path.exists():
                path.rename(path.with_name(f"{path.name}.first"))
        message = f"tried again after gloo lost a peer; {why_it_failed(returncode, output, first)}"
        warnings.warn(TransportRetry(message), stacklevel=2)
    earlier = f" (an earlier attempt: {first})" if first else ""
    raise AssertionError(why_it_failed(returncode, output, log) + earlier)


def _run_group(command: Sequence[str], log: Path, env: dict[str, str], timeout: float, cwd: Path | None) -> int:
    """Run ``command`` in its own process group (its ranks too) to the end, or kill the whole group at ``timeout``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            list(command), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # rank 0 and the ranks it launched
            proc.wait()
            raise AssertionError(f"the run took over {timeout:.0f} s and was killed; its output: {log}") from None
