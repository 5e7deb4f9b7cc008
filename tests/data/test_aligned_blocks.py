"""data.align_documents: training blocks that start where documents start."""

from __future__ import annotations

import numpy as np
import pytest

from litllm.data import LLMDataModule
from litllm.data.shards import DocumentAlignedBlocks, ShardedTokenBlocks, Span, document_starts
from litllm.errors import ConfigError

EOT = 0


def test_document_starts_by_hand():
    # documents: [1 2 3 4 5 6 7](8 tokens with EOT), [9](2), [10 11 12], then the stream ends
    tokens = np.array([1, 2, 3, 4, 5, 6, 7, EOT, 9, EOT, 10, 11, 12])
    # block 3: a block at each document start, and every 3 tokens inside the first (7 tokens: 3 blocks);
    # each needs 4 tokens, so one starting at 10 (10, 11, 12 and nothing after) does not fit.
    assert document_starts(tokens, EOT, 3).tolist() == [0, 3, 6, 8]
    assert document_starts(tokens, EOT, 2).tolist() == [0, 2, 4, 6, 8, 10]
    assert document_starts(np.array([EOT, EOT, 5, 6, 7]), EOT, 2).tolist() == [2]  # empty documents: no block


def write_documents(path, documents):
    stream = np.concatenate([np.append(np.asarray(d), EOT) for d in documents]).astype(np.uint16)
    stream.tofile(path)
    return stream


def test_every_block_starts_a_document_or_continues_one(tmp_path):
    rng = np.random.default_rng(0)
    documents = [rng.integers(1, 500, rng.integers(1, 40)) for _ in range(200)]
    stream = write_documents(tmp_path / "t.bin", documents)
    block = 16
    aligned = DocumentAlignedBlocks([Span(tmp_path / "t.bin", "uint16", 0, len(stream))], block, EOT)
    doc_starts = {0, *(np.flatnonzero(stream == EOT) + 1).tolist()}
    starts = [aligned.locate(i)[1] for i in range(len(aligned))]
    for start in starts:
        # a document start, or block_size tokens after the previous block inside the same document
        assert start in doc_starts or (start - block in starts and EOT not in stream[start - block : start])
    assert doc_starts - {len(stream)} - set(starts) <= {int(s) for s in doc_starts if s + block + 1 > len(stream)}
    sample = aligned[5]
    k, offset = aligned.locate(5)
    assert sample["input_ids"].tolist() == stream[offset : offset + block].tolist()
    assert sample["labels"].tolist() == stream[offset + 1 : offset + block + 1].tolist()
    unaligned = ShardedTokenBlocks([Span(tmp_path / "t.bin", "uint16", 0, len(stream))], block)
    assert len(aligned) > len(unaligned)  # 200 short documents each start a block


def test_data_module_aligns_training_and_keeps_validation(tmp_path, small_tokenizer, make_prepared):
    root = make_prepared()
    common = dict(prepared=str(root), block_size=32, batch_size=4, val_fraction=0.1)
    plain, aligned = LLMDataModule(**common), LLMDataModule(**common, align_documents=True)
    for dm in (plain, aligned):
        dm.prepare_data()
        dm.setup("fit")
    # validation is cut as before; training stops where validation starts
    assert [aligned.val_dataset.locate(i) for i in range(3)] == [plain.val_dataset.locate(i) for i in range(3)]
    val_start = plain.val_dataset.locate(0)
    last = max(aligned.train_dataset.locate(i) for i in range(len(aligned.train_dataset)))
    assert last[0] < val_start[0] or (last[0] == val_start[0] and last[1] + 32 <= val_start[1])
    eot = small_tokenizer.eot_id
    for i in range(0, len(aligned.train_dataset), 97):
        k, offset = aligned.train_dataset.locate(i)
        tokens = aligned.train_dataset.shard(k)
        assert offset == 0 or tokens[offset - 1] == eot or eot not in tokens[offset - 32 : offset]
    batch = next(iter(aligned.train_dataloader()))
    assert batch["input_ids"].shape == (4, 32)


def test_align_documents_refuses_streaming_and_records():
    with pytest.raises(ConfigError, match="data.streaming=true"):
        LLMDataModule(train_data="some/dataset", streaming=True, align_documents=True)
    with pytest.raises(ConfigError, match="data.mode=sft"):
        LLMDataModule(mode="sft", align_documents=True)


def test_cached_text_from_many_files_is_aligned(tmp_path, small_tokenizer, shakespeare_path):
    paragraphs = [p for p in shakespeare_path.read_text().split("\n\n") if p.strip()][:300]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, text in enumerate(paragraphs):
        (corpus / f"{i:04d}.txt").write_text(text)
    dm = LLMDataModule(
        train_data=str(corpus),
        tokenizer=str(small_tokenizer.path),
        block_size=32,
        batch_size=4,
        cache_dir=str(tmp_path / "cache"),
        align_documents=True,
    )
    dm.prepare_data()
    dm.setup("fit")
    train, eot = dm.train_dataset, small_tokenizer.eot_id
    assert isinstance(train, DocumentAlignedBlocks) and len(train) > 0
    tokens = train.shard(0)
    starts = [train.locate(i)[1] for i in range(len(train))]
    assert all(s == 0 or tokens[s - 1] == eot or s - 32 in starts for s in starts)
    assert sum(s == 0 or tokens[s - 1] == eot for s in starts) > 0.9 * int((tokens == eot).sum())
