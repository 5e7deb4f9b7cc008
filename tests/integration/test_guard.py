"""A run with an absurd learning rate, under each policy of the divergence guard."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from integration.test_cli_fit import column, read_metrics, tiny_fit_args
from litllm.cli import main

pytestmark = pytest.mark.integration


def guarded(root, cache, policy, steps=40):
    return tiny_fit_args(
        root,
        cache,
        steps,
        "--model.learning_rate",
        "1e6",
        "--model.warmup_steps",
        "1",
        "--trainer.callbacks+=litllm.train.guard.DivergenceGuard",
        f"--trainer.callbacks.policy={policy}",
    )


def finite_on_disk(root) -> None:
    """Every weight in every checkpoint and model directory under ``root`` is finite."""
    for path in root.rglob("*.ckpt"):
        for name, t in torch.load(path, map_location="cpu", weights_only=True)["state_dict"].items():
            assert torch.isfinite(t).all(), (path, name)
    for path in root.rglob("*.safetensors"):
        for name, t in load_file(path).items():
            assert torch.isfinite(t).all(), (path, name)


def test_rollback_recovers_and_finishes_below_the_starting_loss(tmp_path, capsys):
    root = tmp_path / "run"
    main(guarded(root, tmp_path / "cache", "rollback"))
    err = capsys.readouterr().err
    assert "rolled back to the weights of step 0, learning rate x0.1" in err
    val = column(read_metrics(root), "val/loss")
    assert val and math.isfinite(val[-1][1]) and val[-1][1] < math.log(512)  # below the untrained loss
    assert (root / "final" / "model.safetensors").is_file()
    finite_on_disk(root)


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_skip_and_stop_end_the_run_with_a_message(policy, tmp_path, capsys):
    root = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(guarded(root, tmp_path / "cache", policy))
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "litllm: error: training diverged at step" in err and "largest gradient: " in err
    assert "docs/troubleshooting.md" in err
    if policy == "skip":
        assert "update skipped (20 so far)" in err
    assert not (root / "final").exists()  # no model directory from a diverged run
    finite_on_disk(root)
