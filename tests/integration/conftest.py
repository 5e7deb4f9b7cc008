"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, small_tokenizer) -> Path:
    """A small 'pretrained' Llama-style model directory (random weights are enough to see finetuning work)."""
    torch.manual_seed(0)
    model = GPT(
        ModelConfig.from_name("tiny-llama", block_size=256, n_embd=128, n_head=4, n_kv_head=2, intermediate_size=256)
    )
    return ModelDir(tmp_path_factory.mktemp("base") / "model").save(model, small_tokenizer).path


@pytest.fixture(scope="module")
def tiny_gpt2_model_dir(tmp_path_factory, small_tokenizer) -> Path:
    """A small GPT-2-style model directory: biases, LayerNorm, learned positions, GELU (what the default
    recipes produce), so that every finetuning method is also tried on a model with biases."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=256, n_embd=128, n_head=4, dropout=0.1))
    assert model.blocks[0].attn.qkv.bias is not None and model.config.position == "learned"
    return ModelDir(tmp_path_factory.mktemp("base_gpt2") / "model").save(model, small_tokenizer).path


def _logged(root: Path, key: str) -> list[tuple[int, float]]:
    out = []
    for path in sorted((root / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            out += [(int(r["step"]), float(r[key])) for r in csv.DictReader(f) if r.get(key)]
    return out


@pytest.fixture
def logged() -> Callable[[Path, str], list[tuple[int, float]]]:
    """``logged(root, key)``: the (step, value) pairs a run under ``root`` wrote to its CSV logs."""
    return _logged
