"""benchmarks/gpu_check.py runs every part (training, FSDP2 on 2 processes, generation) at a tiny shape on
the CPU, with only the packages an offline GPU node has: litllm's other dependencies cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# What `pip install --no-deps -e .` next to torch, lightning, torchmetrics, tokenizers and safetensors
# leaves out (Lightning's own dependencies, such as tqdm and PyYAML, come with Lightning).
NOT_ON_THE_NODE = [
    "datasets",
    "peft",
    "bitsandbytes",
    "jsonargparse",
    "matplotlib",
    "zstandard",
    "transformers",
    "fastapi",
    "uvicorn",
]

# A package mapped to None in sys.modules is absent as far as imports go (ModuleNotFoundError, and
# importlib.util.find_spec returns None); availability checks that read the installed distributions
# (lightning_utilities' RequirementCache, used by torchmetrics) are told it is not installed either.
BLOCKER = """
import importlib.metadata as metadata
import sys

BLOCKED = {blocked!r}
for name in BLOCKED:
    sys.modules[name] = None


def _absent(original):
    def lookup(name, *args, **kwargs):
        if name.replace("-", "_").lower() in BLOCKED:
            raise metadata.PackageNotFoundError(name)
        return original(name, *args, **kwargs)

    return lookup


metadata.distribution = _absent(metadata.distribution)
metadata.version = _absent(metadata.version)
"""


def test_gpu_check_smoke_runs_with_the_offline_node_packages(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=NOT_ON_THE_NODE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import peft"], env=env, capture_output=True, text=True)
    assert "import of peft halted" in probe.stderr  # the blocker is active
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--cpu", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (out / "gpu_check.md").read_text()
    results = json.loads((out / "gpu_check.json").read_text())
    for part in (
        "training, 1 GPU, bf16-mixed, eager",
        "FSDP2, 2 processes",
        "generation, batch 1",
        "generation, batch 16",
    ):
        assert part in table
    assert results["train_eager"]["tokens_per_s"] > 0 and results["fsdp2"]["tokens_per_s"] > 0
    assert results["fsdp2"]["devices"] == 2
    assert results["generate"]["batch_16"] > 0 and results["generate"]["batch_1"] > 0
    assert "CPU smoke test" in table
