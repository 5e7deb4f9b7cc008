"""Multi-process training on CPU (gloo, loopback): DDP, FSDP2 and two simulated nodes agree with one process.

Each run is its own Python process (``subprocess``): Lightning's DDP launcher re-executes the command
line, which inside pytest would re-run pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from process_runs import free_port, process_env, run_processes

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("distributed_run.py")


def run(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    command = [sys.executable, str(SCRIPT), str(out), "--cache", str(tmp_path / "cache"), *args]
    run_processes(command, tmp_path / f"{name}.log", timeout=300)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("dist")
    return tmp, run(tmp, "single", "--strategy", "single")


def close(a: dict, b: dict, tol: float = 1e-4, loose: tuple[str, ...] = ()) -> None:
    """Same losses and weight digests; those ending in ``loose`` only to 0.1 (see the Muon test)."""
    assert len(a["losses"]) == len(b["losses"]) == 6
    for x, y in zip(a["losses"], b["losses"]):
        assert x == pytest.approx(y, rel=tol, abs=tol)
    for key in a["weights"]:
        wide = key.endswith(loose) if loose else False
        assert a["weights"][key] == pytest.approx(b["weights"][key], rel=1e-3, abs=0.1 if wide else 1e-3), key


def test_ddp_two_processes_match_one(single):
    tmp, reference = single
    close(run(tmp, "ddp", "--strategy", "ddp", "--devices", "2"), reference)


def test_ddp_with_muon_matches_one_process(tmp_path):
    """Muon orthogonalises the momentum of the averaged gradients: two processes train as one.

    Its Newton-Schulz iterations run in bf16, so the fp32 rounding differences of averaging over two
    processes reach the Muon-trained matrices at bf16 precision: their digests (sums of 12k-50k weights)
    agree to 0.1 (measured: up to 0.05, a few 1e-6 per weight), the AdamW-trained tensors and the losses
    as tightly as with AdamW alone.
    """
    reference = run(tmp_path, "single-muon", "--strategy", "single", "--optimizer", "muon")
    ddp = run(tmp_path, "ddp-muon", "--strategy", "ddp", "--devices", "2", "--optimizer", "muon")
    matrices = ("attn.qkv.weight", "attn.proj.weight", "mlp.up.weight", "mlp.down.weight")
    close(ddp, reference, loose=matrices)


def test_fsdp_two_processes_match_one_and_resume_in_any_number(single):
    tmp, reference = single
    # Lightning's default ModelParallelStrategy() on one node: a (data_parallel=1, tensor_parallel=2) mesh.
    # Both processes must still shard the model and average gradients (litllm.train.distributed.data_parallel_mesh).
    sharded = run(tmp, "fsdp", "--strategy", "fsdp", "--devices", "2")
    close(sharded, reference)
    ckpt = tmp / "run-fsdp" / "checkpoints" / "last.ckpt"
    assert sorted(p.name for p in ckpt.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]  # one shard per rank
    # Resume the sharded checkpoint for two more steps in one process (distributed checkpointing reshards
    # weights and optimizer state onto the new mesh), then in two; both continue the same run.
    resume = ("--strategy", "fsdp", "--steps", "8", "--ckpt_path", str(ckpt))
    one = run(tmp, "fsdp-resumed-1", *resume, "--devices", "1", "--root", str(tmp / "run-fsdp-1"))
    two = run(tmp, "fsdp-resumed-2", *resume, "--devices", "2", "--root", str(tmp / "run-fsdp"))
    for resumed in (one, two):
        assert resumed["global_step"] == 8 and len(resumed["losses"]) == 2
    assert one["losses"] == pytest.approx(two["losses"], rel=1e-5)
    for key in one["weights"]:
        assert one["weights"][key] == pytest.approx(two["weights"][key], rel=1e-4, abs=1e-4), key
    assert one["losses"][0] < sharded["losses"][0] - 0.3  # trained weights came back, not a fresh init
    assert (tmp / "run-fsdp" / "final" / "model.safetensors").is_file()  # consolidated model directory


def test_two_simulated_nodes_train_together(single):
    tmp, reference = single
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        out = tmp / f"node{rank}.json"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(SCRIPT),
                    str(out),
                    "--cache",
                    str(tmp / "cache"),
                    "--strategy",
                    "ddp",
                    "--num_nodes",
                    "2",
                    "--root",
                    str(tmp / "run-nodes"),
                ],
                env=process_env(MASTER_PORT=port, NODE_RANK=str(rank), LOCAL_RANK="0", WORLD_SIZE="2"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    close(json.loads((tmp / "node0.json").read_text()), reference)
