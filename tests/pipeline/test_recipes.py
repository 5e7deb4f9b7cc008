"""The shipped pipeline recipes: every training stage's command parses with its recipe and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from litllm.cli import main
from litllm.pipeline.commands import commands
from litllm.pipeline.spec import load_pipeline

REPO = Path(__file__).resolve().parents[2]
PIPELINES = sorted((REPO / "recipes").glob("zero_to_chat*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_training_stage_parses(path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    pipeline = load_pipeline(path)
    for stage in pipeline.stages:
        if not stage.trains:
            continue
        (command,) = commands(pipeline, stage)
        with pytest.raises(SystemExit) as stop:
            main([*command, "--print_config"])  # parses recipe + overrides, instantiates nothing, reads no data
        assert stop.value.code in (None, 0), capsys.readouterr().err
        printed = capsys.readouterr().out
        assert f"default_root_dir: {pipeline.out_dir / stage.name}" in printed
