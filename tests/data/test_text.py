import numpy as np
import pytest
import torch

from litllm.data.shards import ShardedTokenBlocks, Span
from litllm.data.text import TokenBlocks, build_token_cache, load_token_cache, split_for_encoding, unigram_loss


def test_chunked_encoding_equals_whole_text_encoding(small_tokenizer, shakespeare_path):
    text = shakespeare_path.read_text()[:200_000]
    pieces = split_for_encoding(text, chunk_chars=5_000)
    assert len(pieces) > 30 and "".join(pieces) == text
    chunked = [i for ids in small_tokenizer.encode_batch(pieces) for i in ids]
    assert chunked == small_tokenizer.encode(text)


def test_cache_holds_documents_separated_by_end_of_text(small_tokenizer, tmp_path):
    docs = ["first document", "second one", "third"]
    build_token_cache(tmp_path / "c", iter(docs), small_tokenizer, meta={"source": "test"})
    tokens, meta = load_token_cache(tmp_path / "c")
    expected = []
    for d in docs:
        expected += small_tokenizer.encode(d) + [small_tokenizer.eot_id]
    assert tokens.tolist() == expected
    assert meta["documents"] == 3 and meta["tokens"] == len(expected) and meta["dtype"] == "uint16"
    assert meta["tokenizer"] == small_tokenizer.fingerprint()


def test_complete_cache_is_reused_not_rebuilt(small_tokenizer, tmp_path):
    build_token_cache(tmp_path / "c", iter(["some text"]), small_tokenizer, meta={})

    def exploding():
        raise AssertionError("re-tokenized")
        yield ""

    build_token_cache(tmp_path / "c", exploding(), small_tokenizer, meta={})


def test_empty_data_is_an_error(small_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="no text"):
        build_token_cache(tmp_path / "c", iter([]), small_tokenizer, meta={"source": "nothing"})
    assert not (tmp_path / "c" / "meta.json").exists()


def test_blocks_are_shifted_pairs_without_overlap(tmp_path):
    path = tmp_path / "tokens.bin"
    np.arange(100, dtype=np.uint16).tofile(path)
    blocks = TokenBlocks(path, "uint16", start=10, stop=60, block_size=8)
    assert len(blocks) == (50 - 1) // 8
    first, second = blocks[0], blocks[1]
    assert first["input_ids"].tolist() == list(range(10, 18))
    assert first["labels"].tolist() == list(range(11, 19))
    assert second["input_ids"][0].item() == 18
    last = blocks[len(blocks) - 1]
    assert last["labels"][-1].item() < 60
    with pytest.raises(IndexError):
        blocks[len(blocks)]


def test_token_blocks_are_the_one_span_case_of_sharded_blocks(tmp_path):
    path = tmp_path / "tokens.bin"
    np.arange(100, dtype=np.uint16).tofile(path)
    one = TokenBlocks(path, "uint16", start=10, stop=60, block_size=8)
    spans = ShardedTokenBlocks([Span(path, "uint16", 10, 60), Span(path, "uint16", 60, 100)], block_size=8)
    assert len(spans) == len(one) + (40 - 1) // 8
    for i in range(len(one)):
        assert torch.equal(one[i]["input_ids"], spans[i]["input_ids"])
    assert spans[len(one)]["input_ids"][0].item() == 60  # blocks never cross spans
    assert one.path == path and one.tokens[:3].tolist() == [0, 1, 2]


def test_unigram_loss_is_entropy_of_frequencies():
    train = np.array([0, 0, 1, 1])
    assert unigram_loss(train, np.array([0, 1]), vocab_size=2) == pytest.approx(np.log(2))
