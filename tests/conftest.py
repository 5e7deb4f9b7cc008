"""Shared fixtures. Tests never reach a model or dataset hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    from litllm.corpus.readers import BUILTIN_CORPORA

    return BUILTIN_CORPORA["shakespeare"]


@pytest.fixture(scope="session")
def small_tokenizer(tmp_path_factory, shakespeare_path):
    """A 512-token BPE trained on the built-in corpus, saved to disk."""
    from litllm.model.tokenizer import train_bpe

    tok = train_bpe([shakespeare_path], vocab_size=512)
    path = tok.save(tmp_path_factory.mktemp("tok") / "tokenizer.json")
    tok.path = path
    return tok
