"""Prepared directories written by hand in the ``litllm prepare`` format (manifest.json, shards, tokenizer)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def write_prepared(
    out: Path, tokenizer, documents: list[list[int]], shard_tokens: int, dtype: str = "uint16"
) -> list[np.ndarray]:
    """Write ``documents`` (token ids; end-of-text appended to each) as a prepared directory.

    Shards hold ``shard_tokens`` tokens but the last; a document may continue into the next shard.
    Returns the token array of every shard.
    """
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(tokenizer.path, out / "tokenizer.json")
    stream, starts = [], []
    for doc in documents:
        starts.append(len(stream))
        stream.extend([*doc, tokenizer.eot_id])
    tokens = np.asarray(stream, dtype=dtype)
    starts = np.asarray(starts, dtype=np.uint64)
    shards, entries = [], []
    for k, lo in enumerate(range(0, len(tokens), shard_tokens)):
        chunk = tokens[lo : lo + shard_tokens]
        mine = starts[(starts >= lo) & (starts < lo + len(chunk))] - np.uint64(lo)
        chunk.tofile(out / f"shard_{k:05d}.bin")
        mine.astype(np.uint64).tofile(out / f"shard_{k:05d}.idx")
        shards.append(chunk)
        entries.append({"file": f"shard_{k:05d}.bin", "tokens": len(chunk), "documents": len(mine)})
    manifest = {
        "format": "litllm-prepared",
        "version": 1,
        "dtype": dtype,
        "tokenizer": {
            "file": "tokenizer.json",
            "fingerprint": tokenizer.fingerprint(),
            "vocab_size": tokenizer.vocab_size,
            "eot_id": tokenizer.eot_id,
        },
        "shard_tokens": shard_tokens,
        "shards": entries,
        "totals": {"tokens": len(tokens), "documents": len(documents)},
        "inputs": [],
        "settings": {},
        "report": {},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return shards


@pytest.fixture(name="write_prepared", scope="session")
def write_prepared_fixture() -> Callable[..., list[np.ndarray]]:
    """``write_prepared(out, tokenizer, documents, shard_tokens, dtype="uint16")`` (see above)."""
    return write_prepared


@pytest.fixture(scope="session")
def shakespeare_documents(small_tokenizer, shakespeare_path) -> list[list[int]]:
    """The built-in corpus as documents (its paragraphs), encoded with the small tokenizer."""
    paragraphs = [p for p in shakespeare_path.read_text().split("\n\n") if p.strip()]
    return small_tokenizer.encode_batch(paragraphs)


@pytest.fixture
def make_prepared(tmp_path, small_tokenizer, shakespeare_documents) -> Callable[..., Path]:
    """``make_prepared(name, documents=None, shard_tokens=4096)``: a prepared directory under tmp_path."""

    def make(name: str = "prepared", documents: list[list[int]] | None = None, shard_tokens: int = 4096) -> Path:
        out = tmp_path / name
        write_prepared(out, small_tokenizer, documents or shakespeare_documents, shard_tokens)
        return out

    return make
