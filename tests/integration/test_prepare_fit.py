"""The issue's two commands: ``litllm prepare`` a JSONL corpus, then ``litllm fit --data.prepared`` on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litllm.cli import main
from litllm.model.model_dir import ModelDir

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_prepare_then_fit_the_124m_recipe_shrunk(tmp_path, small_tokenizer, shakespeare_path, capsys):
    text = shakespeare_path.read_text(encoding="utf-8")
    passages = [p for p in text.split("\n\n") if len(p) > 300]
    (tmp_path / "corpus").mkdir()
    with open(tmp_path / "corpus" / "web.jsonl", "w", encoding="utf-8") as f:
        for passage in passages:
            f.write(json.dumps({"text": passage}) + "\n")
    prepared = tmp_path / "prepared"
    main(
        [
            "prepare",
            "--config",
            str(REPO / "recipes" / "prepare_web.yaml"),
            "--input",
            str(tmp_path / "corpus" / "*.jsonl"),
            "--text_field",
            "text",
            "--tokenizer",
            str(small_tokenizer.path),
            "--output",
            str(prepared),
            "--processes",
            "1",
            "--filters.min_words",
            "40",
            "--progress",
            "false",
        ]
    )
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["totals"]["tokens"] > 20_000
    capsys.readouterr()

    root = tmp_path / "run"
    main(
        [
            "fit",
            "--config",
            str(REPO / "recipes" / "pretrain_124m.yaml"),
            "--data.prepared",
            str(prepared),
            "--model.arch_overrides",
            "{n_layer: 1, n_head: 2, n_embd: 32, block_size: 64}",
            "--model.max_steps",
            "3",
            "--model.warmup_steps",
            "1",
            "--data.block_size",
            "64",
            "--data.batch_size",
            "2",
            "--data.num_workers",
            "0",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.strategy",
            "auto",
            "--trainer.precision",
            "32-true",
            "--trainer.max_steps",
            "3",
            "--trainer.accumulate_grad_batches",
            "1",
            "--trainer.val_check_interval",
            "3",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    model, tokenizer = ModelDir(root / "final").load()
    # The run trained with the tokenizer the shards were made with, taken from the prepared directory.
    assert tokenizer.fingerprint() == manifest["tokenizer"]["fingerprint"]
    assert model.config.vocab_size == manifest["tokenizer"]["vocab_size"]
