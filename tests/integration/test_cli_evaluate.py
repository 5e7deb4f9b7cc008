"""`litllm evaluate` end to end on a tiny model directory."""

from __future__ import annotations

import json

import pytest
import torch

from litllm.cli import main
from litllm.infer.evaluate import evaluate_tokens, token_stream
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

pytestmark = pytest.mark.integration


def test_evaluate_prints_a_table_and_writes_json(tmp_path, capsys, small_tokenizer, shakespeare_path):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    model_dir = ModelDir(tmp_path / "m").save(model, small_tokenizer)
    text = shakespeare_path.read_text()[:3000]
    data = tmp_path / "val.txt"
    data.write_text(text)
    out_json = tmp_path / "results.json"

    main(["evaluate", "--model_dir", str(model_dir), "--data", str(data), "--output", str(out_json)])
    printed = capsys.readouterr().out
    results = json.loads(out_json.read_text())
    assert results["bytes"] == len(text.encode("utf-8"))
    expected = evaluate_tokens(model, *token_stream([text], small_tokenizer))
    assert results["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert f"{results['perplexity']:.2f}" in printed and f"{results['bits_per_byte']:.4f}" in printed


def test_evaluate_names_a_missing_data_file(tmp_path, capsys, small_tokenizer):
    model_dir = ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    with pytest.raises(SystemExit):
        main(["evaluate", "--model_dir", str(model_dir), "--data", str(tmp_path / "nope.txt")])
    assert "data file not found" in capsys.readouterr().err
