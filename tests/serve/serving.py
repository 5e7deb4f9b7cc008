"""Starting ``litllm serve`` in a subprocess on a free local port, and plain HTTP requests to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

API_KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self, timeout: float = 30) -> int:
        """Interrupt the server as Ctrl-C does and wait for it to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the server did not stop within {timeout} s:\n{self.log.read_text()}") from None
        return self.process.returncode


def start_server(model_dir: Path, log: Path, *extra: str, timeout: float = 60) -> Server:
    """``litllm serve`` in a subprocess; returns once ``/health`` answers."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "litllm.cli", "serve", "--model_dir", str(model_dir), "--port", str(port), *extra]
    out = log.open("w")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(server.url + "/health", headers=headers), timeout=2):
                return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not answer within {timeout} s:\n{log.read_text()}")


def raw_request(url: str, body: bytes | None = None, key: str | None = API_KEY, method: str | None = None):
    """(status, parsed JSON or text) of a plain HTTP request, for what the openai client cannot send."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text
