"""A tiny finetuned-style model directory and one ``litllm serve`` subprocess shared by the serve tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from serving import API_KEY, start_server

from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Alpaca


@pytest.fixture(scope="session")
def serve_model_dir(tmp_path_factory, small_tokenizer) -> Path:
    """A Llama-style tiny model (context 256) with the Alpaca template saved, as ``litllm finetune`` leaves it."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=256))
    return ModelDir(tmp_path_factory.mktemp("served") / "tiny-chat").save(model, small_tokenizer, Alpaca()).path


@pytest.fixture(scope="session")
def server(serve_model_dir, tmp_path_factory):
    """One server for the API and page tests: API key required, at most 4 sequences decoded at once."""
    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    server = start_server(serve_model_dir, log, "--api_key", API_KEY, "--max_batch", "4", "--log_level", "warning")
    yield server
    server.stop()
