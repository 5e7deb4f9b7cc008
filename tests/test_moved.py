"""Module paths of litllm 0.1 (in old recipes, saved configs and checkpoints) still import."""

import importlib
import sys

import pytest

from litllm import _moved


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("litllm.modules", "litllm.train", "PretrainModule"),
        ("litllm.modules.dpo", "litllm.train.dpo", "DPOModule"),
        ("litllm.callbacks", "litllm.train.callbacks", "SampleGeneration"),
        ("litllm.checkpoint", "litllm.model.model_dir", "ModelDir"),
        ("litllm.config", "litllm.model.config", "ModelConfig"),
    ],
)
def test_old_path_gives_the_same_object_with_one_line(old, new, name, capsys):
    sys.modules.pop(old, None)
    module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert module.__spec__.name == new  # the real module keeps its own identity
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"litllm: {old} is now {new} (the old name still works)"]


def test_new_and_unmoved_paths_are_not_aliased():
    assert _moved.new_name("litllm.train.base") is None
    assert _moved.new_name("litllm.data.module") is None
    assert _moved.new_name("litllm.modulesx") is None
    assert _moved.new_name("litllm.modules.base") == "litllm.train.base"


def test_recipe_with_old_class_paths_still_parses(tmp_path, capsys):
    from litllm.cli import main

    recipe = tmp_path / "old.yaml"
    recipe.write_text(
        "model:\n  class_path: litllm.modules.PretrainModule\n"
        "data:\n  class_path: litllm.data.LLMDataModule\n"
        "trainer:\n  callbacks:\n    - class_path: litllm.callbacks.SampleGeneration\n"
    )
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "arch: tiny-gpt2" in printed  # the model's own defaults were resolved through the old path
    assert "max_new_tokens: 64" in printed  # and the callback's
