"""Training from a prepared directory: manifest checks, sharded blocks, the data module's prepared mode."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from litllm.data import LLMDataModule
from litllm.data.shards import ShardedTokenBlocks, check_tokenizer, load_manifest
from litllm.errors import ConfigError, DataError
from litllm.model.tokenizer import train_bpe


def test_blocks_concatenated_are_the_shard_tokens(tmp_path, small_tokenizer, shakespeare_documents, write_prepared):
    shards = write_prepared(tmp_path / "p", small_tokenizer, shakespeare_documents[:300], shard_tokens=1000)
    manifest = load_manifest(tmp_path / "p")
    assert len(manifest.shards) == len(shards) > 3 and manifest.total_tokens == sum(len(s) for s in shards)
    T = 32
    blocks = ShardedTokenBlocks.from_manifest(manifest, T)
    i = 0
    for tokens in shards:
        n = (len(tokens) - 1) // T  # blocks never cross into the next shard
        inputs = [blocks[i + j]["input_ids"] for j in range(n)]
        last = blocks[i + n - 1]["labels"][-1:]
        assert torch.equal(torch.cat([*inputs, last]), torch.from_numpy(tokens[: n * T + 1].astype(np.int64)))
        for j in range(n):
            sample = blocks[i + j]
            assert torch.equal(sample["input_ids"][1:], sample["labels"][:-1])
        i += n
    assert i == len(blocks) == blocks.total_blocks
    with pytest.raises(IndexError):
        blocks[len(blocks)]


def test_block_range_and_pickling(tmp_path, small_tokenizer, shakespeare_documents, write_prepared):
    write_prepared(tmp_path / "p", small_tokenizer, shakespeare_documents[:300], shard_tokens=1000)
    manifest = load_manifest(tmp_path / "p")
    whole = ShardedTokenBlocks.from_manifest(manifest, 16)
    part = ShardedTokenBlocks.from_manifest(manifest, 16, 50, 120)
    assert len(part) == 70
    assert torch.equal(part[0]["input_ids"], whole[50]["input_ids"])
    assert torch.equal(part[69]["labels"], whole[119]["labels"])
    part[3]  # opens a shard
    clone = pickle.loads(pickle.dumps(part))
    assert clone._shards == {} and torch.equal(clone[5]["input_ids"], part[5]["input_ids"])
    with pytest.raises(ValueError, match="outside"):
        ShardedTokenBlocks.from_manifest(manifest, 16, 0, whole.total_blocks + 1)


def test_bad_directories_name_the_file(tmp_path, small_tokenizer, shakespeare_documents, write_prepared):
    root = tmp_path / "p"
    write_prepared(root, small_tokenizer, shakespeare_documents[:200], shard_tokens=1000)
    manifest = json.loads((root / "manifest.json").read_text())

    (root / "shard_00001.bin").rename(root / "moved.bin")
    with pytest.raises(DataError, match=r"shard_00001\.bin is missing"):
        load_manifest(root)
    (root / "moved.bin").rename(root / "shard_00001.bin")

    with open(root / "shard_00002.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match=r"shard_00002\.bin has 2,001 bytes but the manifest says 1,000 uint16"):
        load_manifest(root)
    (root / "shard_00002.bin").write_bytes((root / "shard_00002.bin").read_bytes()[:-1])
    load_manifest(root)  # whole again

    (root / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
    with pytest.raises(DataError, match="version 2 is not supported"):
        load_manifest(root)
    (root / "manifest.json").write_text(json.dumps({**manifest, "format": "something-else"}))
    with pytest.raises(DataError, match="format is 'something-else'"):
        load_manifest(root)
    (root / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"manifest\.json is missing.*did not finish"):
        load_manifest(root)
    with pytest.raises(DataError, match="manifest.json is missing"):
        LLMDataModule(prepared=str(root)).prepare_data()


def test_another_tokenizer_is_refused_with_both_hashes(tmp_path, make_prepared):
    root = make_prepared()
    other = train_bpe(texts=iter(["some other text entirely"] * 50), vocab_size=300)
    other_path = other.save(tmp_path / "other" / "tokenizer.json")
    manifest = load_manifest(root)
    expected = (
        f"{root} was tokenized with tokenizer {manifest.tokenizer_fingerprint} but data.tokenizer ({other_path}) "
        f"is {other.fingerprint()}; re-run litllm prepare or point data.tokenizer at {root / 'tokenizer.json'}"
    )
    dm = LLMDataModule(prepared=str(root), tokenizer=str(other_path), block_size=32)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    assert str(err.value) == expected
    with pytest.raises(DataError, match=other.fingerprint()):
        check_tokenizer(manifest, other)


def test_data_module_trains_on_a_prepared_directory(tmp_path, make_prepared, small_tokenizer):
    root = make_prepared()
    # The recipe's settings for another source do not matter: nothing is read from train_data or streamed.
    dm = LLMDataModule(
        prepared=str(root), train_data="no/such-dataset", streaming=True, block_size=32, batch_size=4, val_fraction=0.1
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.contract.tokenizer.fingerprint() == small_tokenizer.fingerprint()
    total = dm.train_dataset.total_blocks
    assert len(dm.val_dataset) == int(total * 0.1) and len(dm.train_dataset) + len(dm.val_dataset) == total
    assert dm.val_dataset.start == dm.train_dataset.stop == len(dm.train_dataset)  # validation = the last blocks
    assert 1.5 < dm.contract.val_bytes_per_token < 4.0
    assert 4.0 < dm.contract.unigram_loss < 6.3
    assert dm.contract.data_fingerprint == load_manifest(root).fingerprint()
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 32) and batch["input_ids"].dtype == torch.long
    # The same tokenizer named explicitly is accepted.
    same = LLMDataModule(prepared=str(root), tokenizer=str(small_tokenizer.path), block_size=32)
    same.setup("fit")
    assert same.contract.data_fingerprint == dm.contract.data_fingerprint


def test_statistics_use_a_bounded_sample(make_prepared, monkeypatch):
    from litllm.data.builders import prepared as prepared_builder

    root = make_prepared()
    full = LLMDataModule(prepared=str(root), block_size=32)
    full.setup("fit")
    monkeypatch.setattr(prepared_builder, "STATS_TRAIN_TOKENS", 20_000)
    monkeypatch.setattr(prepared_builder, "STATS_VAL_TOKENS", 5_000)
    sampled = LLMDataModule(prepared=str(root), block_size=32)
    sampled.setup("fit")
    assert sampled.contract.unigram_loss == pytest.approx(full.contract.unigram_loss, rel=0.1)
    assert sampled.contract.val_bytes_per_token == pytest.approx(full.contract.val_bytes_per_token, rel=0.1)


def test_validation_from_another_prepared_directory(tmp_path, make_prepared, shakespeare_documents):
    train = make_prepared("train", shakespeare_documents[:3000])
    val = make_prepared("val", shakespeare_documents[3000:3400])
    dm = LLMDataModule(prepared=str(train), val_data=str(val), block_size=32)
    dm.setup("fit")
    assert len(dm.train_dataset) == dm.train_dataset.total_blocks
    assert len(dm.val_dataset) == dm.val_dataset.total_blocks > 0
    text = tmp_path / "val.txt"
    text.write_text("some validation text\n")
    with pytest.raises(ConfigError, match="must be another prepared directory"):
        LLMDataModule(prepared=str(train), val_data=str(text), block_size=32).setup("fit")
    with pytest.raises(ConfigError, match="mode=text"):
        LLMDataModule(mode="sft", prepared=str(train))


def test_too_small_for_the_block_size(make_prepared, shakespeare_documents):
    root = make_prepared("small", shakespeare_documents[:3])
    with pytest.raises(DataError, match="too few"):
        LLMDataModule(prepared=str(root), block_size=64).setup("fit")
