"""A bare `litllm finetune METHOD` runs the matching CPU recipe and says which."""

from __future__ import annotations

import pytest

from litllm.cli import main
from litllm.train.cli import DEFAULT_RECIPES, default_recipe_args, recipes_dir


def test_every_method_has_a_shipped_recipe():
    assert all((recipes_dir() / name).is_file() for name in DEFAULT_RECIPES.values())


def test_no_config_takes_the_default_and_a_given_one_is_kept(capsys):
    args = default_recipe_args("lora", ["--trainer.max_steps", "3"])
    assert args == ["--config", str(recipes_dir() / "sft_lora_tiny.yaml"), "--trainer.max_steps", "3"]
    assert "no --config given; using" in capsys.readouterr().err
    assert default_recipe_args("dpo", ["--config=x.yaml"]) == ["--config=x.yaml"]


def test_bare_finetune_parses_its_recipe_instead_of_printing_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["finetune", "dpo", "--print_config"])
    assert stop.value.code in (None, 0)
    captured = capsys.readouterr()
    assert "DPOModule" in captured.out and "init_from: out/sft_full_tiny/final" in captured.out
    assert "dpo_lora_tiny.yaml" in captured.err
