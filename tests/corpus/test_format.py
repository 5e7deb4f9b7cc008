"""The prepared-corpus format: dtype rule, shard names, manifest round trip, and no torch in the corpus layer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from litllm.corpus.format import (
    FORMAT,
    VERSION,
    is_prepared,
    load_manifest,
    save_manifest,
    shard_files,
    token_dtype,
)
from litllm.errors import DataError


def test_token_dtype_is_uint16_up_to_65536_ids():
    assert token_dtype(512) == np.uint16 and token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32 and token_dtype(200_000) == np.uint32


def test_shard_files_are_numbered_with_five_digits():
    assert shard_files(0) == ("shard_00000.bin", "shard_00000.idx")
    assert shard_files(123) == ("shard_00123.bin", "shard_00123.idx")


def test_saved_manifest_loads_back_and_bad_sizes_are_named(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    entries = []
    for k, n in enumerate((100, 37)):
        name, index = shard_files(k)
        np.arange(n, dtype=np.uint16).tofile(tmp_path / name)
        np.zeros(2, dtype=np.uint64).tofile(tmp_path / index)
        entries.append({"file": name, "tokens": n, "documents": 2})
    tokenizer = {"file": "tokenizer.json", "fingerprint": "abc", "vocab_size": 512, "eot_id": 0}
    data = save_manifest(tmp_path, "uint16", tokenizer, 100, entries, inputs=[], report={"x": 1})
    assert list(data)[:7] == ["format", "version", "dtype", "tokenizer", "shard_tokens", "shards", "totals"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == data
    assert data["format"] == FORMAT and data["version"] == VERSION and data["totals"] == {"tokens": 137, "documents": 4}
    manifest = load_manifest(tmp_path)
    assert is_prepared(tmp_path) and manifest.total_tokens == 137 and manifest.vocab_size == 512
    assert [s.path.name for s in manifest.shards] == ["shard_00000.bin", "shard_00001.bin"]
    np.arange(5, dtype=np.uint16).tofile(tmp_path / "shard_00001.bin")
    with pytest.raises(DataError, match=r"shard_00001\.bin has 10 bytes but the manifest says 37 uint16"):
        load_manifest(tmp_path)


def test_corpus_layer_and_prepare_do_not_import_torch():
    code = (
        "import sys, litllm.corpus.format, litllm.corpus.readers, litllm.prepare.pipeline;"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
