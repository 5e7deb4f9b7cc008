"""``litllm lr-find``: a learning-rate sweep on a recipe, its plot and the override to paste."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integration.test_cli_fit import tiny_fit_args
from litllm.cli import main

pytestmark = pytest.mark.integration


def test_lr_find_prints_a_suggestion_and_draws_the_sweep(tmp_path, capsys):
    root = tmp_path / "run"
    recipe = tiny_fit_args(root, tmp_path / "cache", 1)[1:]  # the recipe options, without the verb
    main(["lr-find", *recipe, "--num_steps", "40", "--min_lr", "1e-5", "--max_lr", "10"])
    out = capsys.readouterr().out
    found = re.search(r"--model.learning_rate (\S+)", out)
    assert found and 1e-5 <= float(found.group(1)) <= 10
    assert "(the recipe has 3.00e-03)" in out
    assert (root / "lr_find.png").stat().st_size > 5000
    assert not (root / "final").exists() and not list(root.rglob("*.ckpt"))  # a sweep keeps no weights


def test_lr_find_checks_its_range(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["lr-find", "--min_lr", "1", "--max_lr", "0.1"])
    assert stop.value.code == 1
    assert capsys.readouterr().err.strip() == "litllm: error: --min_lr 1.0 and --max_lr 0.1: need 0 < min_lr < max_lr"


def test_lr_find_refuses_muon(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["lr-find", "--config", str(Path(__file__).parents[2] / "recipes" / "pretrain_shakespeare_fast.yaml")])
    assert stop.value.code == 1
    assert "model.optimizer=muon has two" in capsys.readouterr().err
