"""A killed ``litllm prepare`` leaves no worker behind (Linux)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's"),
]


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def test_workers_die_with_a_killed_parent(tmp_path, small_tokenizer):
    tokenizer = small_tokenizer.save(tmp_path / "tok")
    text = (Path(__file__).resolve().parents[2] / "litllm/data/corpora/tinyshakespeare.txt").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    with open(tmp_path / "corpus.jsonl", "w") as f:  # enough work that the workers are still busy
        for i in range(60_000):
            f.write(json.dumps({"text": f"{i} " + " ".join(lines[i % len(lines) : i % len(lines) + 8])}) + "\n")
    command = [
        sys.executable, "-m", "litllm.cli", "prepare", "--input", str(tmp_path / "corpus.jsonl"),
        "--tokenizer", str(tokenizer), "--output", str(tmp_path / "out"), "--processes", "2",
        "--unit_bytes", "1000000",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while len(workers := children(parent.pid)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool never started"
        time.sleep(1.0)  # the workers are past their initializer and working
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.time() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        alive = [
            pid
            for pid in workers
            if Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
        ]
        assert not alive, f"orphaned workers still running: {alive}"
    finally:
        parent.kill()
        for pid in children(parent.pid):
            os.kill(pid, signal.SIGKILL)
