"""``litllm prepare`` killed with SIGKILL at random moments, then re-run with the same command, writes the
same bytes as a run never stopped: every shard, every index, the tokenizer copy and the manifest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def corpus(folder: Path) -> list[str]:
    """Three JSONL files of Shakespeare lines, some records repeated (work for exact deduplication)."""
    text = (REPO / "litllm/data/corpora/tinyshakespeare.txt").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    folder.mkdir()
    files = []
    for n in range(3):
        path = folder / f"part{n}.jsonl"
        with open(path, "w") as f:
            for i in range(2500):
                j = (i * 7 + n * 1000) % (len(lines) - 12)
                f.write(json.dumps({"text": f"{i % 2000} " + " ".join(lines[j : j + 12])}) + "\n")
        files.append(str(path))
    return files


def command(files: list[str], tokenizer: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "litllm", "prepare", "--input", json.dumps(files), "--tokenizer", str(tokenizer),
        "--output", str(out), "--processes", "2", "--unit_bytes", "300000", "--shard_tokens", "10000",
        "--dedup.near", "false", "--progress", "false",
    ]  # fmt: skip


def env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def contents(out: Path) -> dict[str, bytes]:
    """What a training run reads: the manifest, the tokenizer and every shard file with its index."""
    names = [p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(("report", "progress"))]
    return {name: (out / name).read_bytes() for name in sorted(names) if not name.endswith(".png")}


def test_killed_prepare_reruns_to_identical_bytes(tmp_path, small_tokenizer):
    files = corpus(tmp_path / "corpus")
    reference = tmp_path / "reference"
    began = time.monotonic()
    subprocess.run(command(files, small_tokenizer.path, reference), env=env(), check=True, capture_output=True)
    took = time.monotonic() - began
    expected = contents(reference)
    assert "manifest.json" in expected and sum(n.endswith(".bin") for n in expected) >= 50, sorted(expected)

    manifest = json.loads(expected["manifest.json"])
    units, shards = len(manifest["units"]), len(manifest["shards"])
    out = tmp_path / "killed"
    rng = random.Random(12)
    n_units, n_shard, seconds = rng.randint(1, units - 2), rng.randint(1, shards - 2), rng.uniform(0.1, 0.9) * took
    # Killed three times, each rerun resuming what the last left: once a random number of units are done
    # (the workers busy with others), once a random number of shards are written, and at a random time.
    moments = [
        lambda: len(list((out / "parts").glob("*.json"))) >= n_units,
        lambda: (out / f"shard_{n_shard:05d}.bin").is_file(),
        lambda: time.sleep(seconds) or True,
    ]
    for when in moments:
        proc = subprocess.Popen(
            command(files, small_tokenizer.path, out), env=env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        while not when():
            assert proc.poll() is None, "finished before it could be killed"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers, as `kill -9 -PGID` or an OOM kill
        proc.wait(timeout=30)
        if when is not moments[-1]:
            assert not (out / "manifest.json").exists()
    done = subprocess.run(command(files, small_tokenizer.path, out), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    got = contents(out)
    assert sorted(got) == sorted(expected)
    assert json.loads(got["manifest.json"]) == json.loads(expected["manifest.json"])
    for name in expected:
        assert got[name] == expected[name], name


def test_rerun_after_a_kill_during_clean_up_removes_the_leftovers(tmp_path, small_tokenizer, shakespeare_passages):
    from litllm.prepare.pipeline import prepare

    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in shakespeare_passages[:20]))
    out = tmp_path / "out"
    args = dict(input=str(tmp_path / "docs.jsonl"), output=str(out), tokenizer=str(small_tokenizer.path))
    prepare(**args, processes=1, progress=False)
    expected = contents(out)
    (out / "parts").mkdir()  # as a run killed after its manifest, before its clean-up, leaves them
    (out / "parts" / "unit.tokens").write_bytes(b"x")
    (out / "progress.json").write_text("{}")
    (out / "settings.json").write_text("{}")
    prepare(**args, processes=1, progress=False)
    assert not any((out / name).exists() for name in ("parts", "progress.json", "settings.json"))
    assert contents(out) == expected
