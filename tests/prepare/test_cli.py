"""``litllm prepare`` from the command line with the shipped recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litllm.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("prepare_*.yaml")), ids=lambda p: p.name)
def test_prepare_recipe_runs_from_the_command_line(recipe, tmp_path, small_tokenizer, shakespeare_passages, capsys):
    assert recipe.read_text().startswith("# litllm prepare --config recipes/")
    (tmp_path / "corpus").mkdir()
    with open(tmp_path / "corpus" / "web.jsonl", "w") as f:
        for doc in shakespeare_passages[:50]:
            f.write(json.dumps({"text": doc}) + "\n")
    out = tmp_path / "prepared"
    main(
        [
            "prepare",
            "--config",
            str(recipe),
            "--input",
            str(tmp_path / "corpus" / "*.jsonl"),
            "--text_field",
            "text",
            "--tokenizer",
            str(small_tokenizer.path),
            "--output",
            str(out),
            "--processes",
            "1",
            "--filters.min_words",
            "20",
        ]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["filters"]["min_words"] == 20  # the command line wins over the recipe
    assert manifest["totals"]["documents"] >= 45
    assert "| documents out |" in capsys.readouterr().out


def test_wrong_option_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--input", "x", "--output", "y", "--tokenizer", "z", "--filters.min_wordz", "3"])
    assert "min_wordz" in capsys.readouterr().err
