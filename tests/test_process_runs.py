"""The distributed tests' launcher says why a run failed: the signal, the log, the stack of a process that aborted;
it tries a run again only after gloo lost a peer, and only from nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

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

FLAKY = """
import os, sys
from pathlib import Path
out = Path(sys.argv[1])
if not Path(sys.argv[2]).exists():  # the first attempt: writes part of its output, then gloo loses a peer
    Path(sys.argv[2]).touch()
    out.mkdir()
    (out / "last.ckpt").write_text("step 12")
    print("RuntimeError: [pair.cc:538] Connection closed by peer [127.0.0.1]:4242", flush=True)
    os.abort()
assert not out.exists(), "the second attempt found the first one's output"
out.mkdir()
print("trained")
"""


def test_a_process_killed_by_a_signal_is_named_with_its_stacks_and_its_log(tmp_path):
    log = tmp_path / "run.log"
    with pytest.raises(AssertionError) as failed:
        run_processes([sys.executable, "-c", ABORTS], log, cwd=tmp_path)
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


def test_a_lost_gloo_peer_is_tried_once_more_from_nothing_and_said(tmp_path):
    out, marker, log = tmp_path / "run", tmp_path / "marker", tmp_path / "run.log"
    command = [sys.executable, "-c", FLAKY, str(out), str(marker)]
    with pytest.warns(TransportRetry, match=r"tried again after gloo lost a peer; the run was killed by SIGABRT"):
        output = run_processes(command, log, cwd=tmp_path, outputs=[out])
    assert output == "trained\n" and "Connection closed by peer" in (tmp_path / "run.log.first").read_text()
    assert (tmp_path / "run.first" / "last.ckpt").read_text() == "step 12"  # moved aside, not resumed from


def test_any_other_failure_is_not_tried_again(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "marker"
    with pytest.raises(AssertionError, match="killed by SIGABRT"):  # no outputs named: it may write where it reads
        run_processes([sys.executable, "-c", FLAKY, str(out), str(marker)], tmp_path / "a.log", cwd=tmp_path)
    marker.unlink()
    (out / "last.ckpt").unlink()
    out.rmdir()
    exits = FLAKY.replace("os.abort()", "sys.exit(3)")
    with pytest.raises(AssertionError, match="exited with status 3"):  # an exit, not an abort: the run's own failure
        run_processes([sys.executable, "-c", exits, str(out), str(marker)], tmp_path / "b.log", outputs=[out])
    with pytest.raises(AssertionError, match="killed by SIGABRT"):  # an abort without gloo's words
        run_processes([sys.executable, "-c", ABORTS], tmp_path / "c.log", cwd=tmp_path, outputs=[out])
    assert not list(tmp_path.glob("*.first"))


def test_a_run_past_its_time_is_killed_with_its_ranks(tmp_path):
    pid_file = tmp_path / "rank1.pid"
    rank1 = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    rank0 = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {rank1!r}]); time.sleep(60)"
    with pytest.raises(AssertionError, match="took over 3 s and was killed"):
        run_processes([sys.executable, "-c", rank0], tmp_path / "slow.log", timeout=3)
    status = Path(f"/proc/{pid_file.read_text()}/status")
    for _ in range(50):  # the launched rank is gone too (or a zombie, dead, waiting for init to reap it)
        if not status.exists() or "State:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the rank the run launched is still running")
