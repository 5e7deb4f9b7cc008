"""The distributed tests' launcher says why a run failed: the signal, the log, the stack of a process that aborted."""

from __future__ import annotations

import sys

import pytest
from process_runs import TransportRetry, run_processes

ABORTS = """
import os, threading
def communicate():
    os.abort()  # as a C++ terminate in a communication thread ends a process
thread = threading.Thread(target=communicate, name="gloo-like")
thread.start()
thread.join()
"""


def test_a_process_killed_by_a_signal_is_named_with_its_stacks_and_its_log(tmp_path):
    log = tmp_path / "run.log"
    with pytest.raises(AssertionError) as failed:
        run_processes([sys.executable, "-c", ABORTS], log)
    message = str(failed.value)
    assert message.startswith(f"the run was killed by SIGABRT; its whole output: {log}")
    assert "Fatal Python error: Aborted" in message  # PYTHONFAULTHANDLER: every thread's stack
    excerpt = message.split("--- last output:")[0]
    assert "in communicate" in excerpt and "in communicate" in log.read_text()


def test_a_traceback_is_kept_and_a_run_that_succeeds_returns_its_output(tmp_path):
    with pytest.raises(AssertionError) as failed:
        run_processes([sys.executable, "-c", "print('x' * 9000); raise KeyError('lost')"], tmp_path / "a.log")
    message = str(failed.value)
    assert "exited with status 1" in message and "KeyError: 'lost'" in message and len(message) < 7000
    assert run_processes([sys.executable, "-c", "print('fine')"], tmp_path / "b.log") == "fine\n"


FLAKY = """
import os, sys
from pathlib import Path
marker = Path(sys.argv[1])
if not marker.exists():
    marker.touch()
    print("RuntimeError: [pair.cc:538] Connection closed by peer [127.0.0.1]:4242", flush=True)
    os.abort()
print("trained")
"""


def test_a_lost_gloo_peer_is_tried_once_more_and_said(tmp_path):
    log = tmp_path / "run.log"
    with pytest.warns(TransportRetry, match=r"tried again after gloo lost a peer; the run was killed by SIGABRT"):
        output = run_processes([sys.executable, "-c", FLAKY, str(tmp_path / "marker")], log)
    assert output == "trained\n" and "Connection closed by peer" in (tmp_path / "run.first.log").read_text()


def test_any_other_failure_is_not_tried_again(tmp_path):
    marker = tmp_path / "marker"
    command = [sys.executable, "-c", FLAKY.replace("os.abort()", "sys.exit(3)"), str(marker)]
    with pytest.raises(AssertionError, match="exited with status 3"):
        run_processes(command, tmp_path / "run.log")  # an exit, not a signal: the run's own failure
    marker.unlink()
    with pytest.raises(AssertionError, match="killed by SIGABRT"):
        run_processes([sys.executable, "-c", ABORTS], tmp_path / "abort.log")  # a signal without gloo's words
    assert not (tmp_path / "abort.first.log").exists()
