"""``litllm run``'s stage process: the signals it passes on to the running stage (without starting litllm)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from litllm.pipeline.runner import StageProcess

# A stand-in stage: says it is ready once its handlers are set, then exits with 128 + the signal it gets
# (as a litllm training stage exits 143 after its checkpoint).
STAGE = """
import signal, sys, time
def stop(signum, frame):
    sys.exit(128 + signum)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
    signal.signal(s, stop)
open(sys.argv[1], "w").close()
time.sleep(60)
sys.exit(0)
"""


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
def test_a_signal_to_litllm_run_reaches_the_stage_and_does_not_end_the_runner(tmp_path: Path, signum: int):
    ready = tmp_path / "ready"
    process = StageProcess(program=[sys.executable, "-c", STAGE])

    def signal_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signum)  # this process plays `litllm run`, handlers installed by run()

    sender = threading.Thread(target=signal_when_ready)
    sender.start()
    started = time.monotonic()
    code = process.run([str(ready)])
    sender.join()
    # the stage got the signal (exit 128 + signum) and the runner is still here to record it
    assert code == 128 + signum and process.stopped_by == signum
    assert time.monotonic() - started < 30
    assert signal.getsignal(signum) is not process._forward  # the handlers were given back
