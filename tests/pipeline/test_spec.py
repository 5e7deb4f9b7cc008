"""Pipeline recipes: parsing, wiring of outputs between stages, and one-line mistakes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from litllm.errors import ConfigError
from litllm.pipeline.commands import commands, fingerprint, option_value
from litllm.pipeline.spec import apply_overrides, load_pipeline

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, recipe: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_the_shipped_recipe_wires_each_model_into_the_next_stage():
    pipeline = load_pipeline(REPO / "recipes" / "zero_to_chat.yaml", out_dir="o")
    assert [s.name for s in pipeline.stages] == ["pretrain", "sft", "dpo", "evaluate"] and pipeline.chat == "dpo"
    (sft,) = commands(pipeline, pipeline.stage("sft"))
    assert sft[:2] == ["finetune", "full"] and sft[sft.index("--model.init_from") + 1] == str(Path("o/pretrain/final"))
    assert sft[sft.index("--trainer.default_root_dir") + 1] == str(Path("o/sft"))
    evaluations = commands(pipeline, pipeline.stage("evaluate"))
    assert [c[c.index("--model_dir") + 1] for c in evaluations] == [f"o/{m}/final" for m in ("pretrain", "sft", "dpo")]


def test_tokenizer_and_prepared_outputs_are_passed_on(tmp_path):
    recipe = {
        "out_dir": str(tmp_path / "o"),
        "stages": {
            "tok": {"run": "tokenizer train", "data": "a.txt", "set": {"vocab_size": 512}},
            "prep": {"run": "prepare", "recipe": str(REPO / "recipes/prepare_web.yaml"), "tokenizer": "tok"},
            "pre": {"run": "fit", "recipe": str(REPO / "recipes/pretrain_shakespeare.yaml"), "prepared": "prep"},
        },
    }
    pipeline = load_pipeline(write(tmp_path, recipe))
    (tok,) = commands(pipeline, pipeline.stage("tok"))
    assert tok == ["tokenizer", "train", "--files", "a.txt", "--out", str(tmp_path / "o/tok"), "--vocab_size", "512"]
    (prep,) = commands(pipeline, pipeline.stage("prep"))
    assert prep[prep.index("--tokenizer") + 1] == str(tmp_path / "o/tok")
    (fit,) = commands(pipeline, pipeline.stage("pre"))
    assert fit[fit.index("--data.prepared") + 1] == str(tmp_path / "o/prep/prepared")
    assert pipeline.chat == "pre"  # the last training stage by default


@pytest.mark.parametrize(
    "stages, message",
    [
        ({"a": {"run": "fit", "recipie": "x.yaml"}}, "unknown key 'recipie'; did you mean 'recipe'?"),
        ({"a": {"run": "finetune loar"}}, "did you mean 'finetune lora'?"),
        ({"a": {"run": "finetune full", "recipe": "recipes/sft_full_tiny.yaml"}}, "needs 'from'"),
        ({"a": {"run": "fit", "recipe": "nope.yaml"}}, "file not found: nope.yaml"),
        (
            {"a": {"run": "evaluate", "from": "b", "prompts": "recipes/zero_to_chat_prompts.json"}},
            "not an earlier stage",
        ),
        ({"a": {"run": "evaluate", "models": []}}, "needs 'prompts', 'data' or both"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(tmp_path, monkeypatch, stages, message):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_pipeline(write(tmp_path, {"stages": stages}))


def test_unknown_top_level_key_and_stage_selection(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'stage'; did you mean 'stages'"):
        load_pipeline(write(tmp_path, {"stage": {}}))
    pipeline = load_pipeline(REPO / "recipes" / "zero_to_chat.yaml")
    with pytest.raises(ConfigError, match="no stage named 'sfft'.*did you mean 'sft'"):
        pipeline.stage("sfft")


def test_values_reach_the_command_line_as_jsonargparse_reads_them():
    assert [option_value(v) for v in (True, None, 3, [1, 2], {"a": 1})] == ["true", "null", "3", "[1, 2]", '{"a": 1}']


def test_the_fingerprint_follows_settings_files_and_upstream_runs(tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("hello")
    recipe = {"out_dir": str(tmp_path / "o"), "stages": {"tok": {"run": "tokenizer train", "data": str(data)}}}
    pipeline = load_pipeline(write(tmp_path, recipe))
    stage = pipeline.stage("tok")
    first = fingerprint(pipeline, stage, {})
    assert fingerprint(pipeline, stage, {}) == first
    data.write_text("hello again")  # the data changed: the stage must run again
    second = fingerprint(pipeline, stage, {})
    assert second != first
    stage.set["vocab_size"] = 300
    assert fingerprint(pipeline, stage, {}) not in (first, second)


def test_your_own_data_is_one_override_per_stage():
    pipeline = load_pipeline(REPO / "recipes" / "zero_to_chat.yaml", out_dir="o")
    apply_overrides(
        pipeline,
        ["pretrain.data.train_data=corpus/*.txt", "sft.data.train_data=mine.jsonl", "dpo.trainer.max_steps=50"],
    )
    (fit,) = commands(pipeline, pipeline.stage("pretrain"))
    assert fit[-2:] == ["--data.train_data", "corpus/*.txt"]
    (dpo,) = commands(pipeline, pipeline.stage("dpo"))
    assert dpo[-2:] == ["--trainer.max_steps", "50"]
    with pytest.raises(ConfigError, match="no stage named 'pretrian'.*did you mean 'pretrain'"):
        apply_overrides(pipeline, ["pretrian.data.train_data=x"])
    with pytest.raises(ConfigError, match="expected STAGE.KEY=VALUE"):
        apply_overrides(pipeline, ["pretrain=x"])
