import json

import pytest
import torch

from litllm.corpus import readers
from litllm.data import LLMDataModule, sources, tokenizer_source
from litllm.data.builders import text as text_builders
from litllm.errors import DataError


def ready(**kwargs) -> LLMDataModule:
    dm = LLMDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_builtin_corpus_trains_tokenizer_and_splits(tmp_path):
    dm = ready(cache_dir=str(tmp_path), vocab_size=512, block_size=64, batch_size=4)
    assert dm.contract.tokenizer.vocab_size == 512
    train, val = dm.train_dataset, dm.val_dataset
    assert 8 * len(val) < len(train) < 10 * len(val)  # 90/10 of the text
    assert val.path != train.path  # the two parts of the text have their own caches
    assert 1.5 < dm.contract.val_bytes_per_token < 4.0
    assert 4.0 < dm.contract.unigram_loss < 6.3  # below ln(512) = 6.24: frequencies carry information
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 64) and batch["input_ids"].dtype == torch.long
    assert torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1])


def test_split_and_tokens_are_deterministic(tmp_path):
    a = ready(cache_dir=str(tmp_path / "a"), vocab_size=400, block_size=32)
    b = ready(cache_dir=str(tmp_path / "b"), vocab_size=400, block_size=32)
    assert a.contract.tokenizer.fingerprint() == b.contract.tokenizer.fingerprint()
    assert torch.equal(a.val_dataset[3]["input_ids"], b.val_dataset[3]["input_ids"])
    assert (a.train_dataset.start, a.train_dataset.stop) == (b.train_dataset.start, b.train_dataset.stop)


def test_second_run_reuses_tokenizer_and_cache(tmp_path, monkeypatch):
    ready(cache_dir=str(tmp_path), vocab_size=300, block_size=32)
    monkeypatch.setattr(tokenizer_source, "train_bpe", lambda *a, **k: pytest.fail("tokenizer retrained"))
    monkeypatch.setattr(text_builders, "build_token_cache", lambda *a, **k: pytest.fail("data re-tokenized"))
    dm = ready(cache_dir=str(tmp_path), vocab_size=300, block_size=32)
    assert len(dm.train_dataset) > 0


def test_changed_data_is_re_tokenized(tmp_path, small_tokenizer):
    data = tmp_path / "corpus.txt"
    data.write_text("alpha beta gamma\n" * 200)
    first = ready(
        train_data=str(data), tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path / "c"), block_size=16
    )
    data.write_text("delta epsilon\n" * 300)
    second = ready(
        train_data=str(data), tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path / "c"), block_size=16
    )
    assert first.train_dataset.path != second.train_dataset.path


def test_jsonl_with_text_field_and_explicit_validation(tmp_path, small_tokenizer):
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    train.write_text("".join(json.dumps({"body": f"document number {i} about kings"}) + "\n" for i in range(200)))
    val.write_text("".join(json.dumps({"body": f"held out {i}"}) + "\n" for i in range(50)))
    dm = ready(
        train_data=str(train),
        val_data=str(val),
        text_field="body",
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path / "c"),
        block_size=16,
    )
    ids = dm.val_dataset.tokens[:40].tolist()
    assert small_tokenizer.eot_id in ids  # documents are separated
    assert small_tokenizer.decode(ids).startswith("held out 0<|endoftext|>held out 1")


def test_bad_jsonl_line_is_named(tmp_path, small_tokenizer):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\nnot json\n')
    dm = LLMDataModule(train_data=str(path), tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        dm.prepare_data()


def test_missing_data_and_tokenizer_are_named(tmp_path):
    with pytest.raises(DataError, match="missing.txt"):
        LLMDataModule(train_data=str(tmp_path / "missing.txt"), cache_dir=str(tmp_path)).prepare_data()
    with pytest.raises(FileNotFoundError, match="nope.json"):
        LLMDataModule(tokenizer=str(tmp_path / "nope.json"), cache_dir=str(tmp_path)).prepare_data()


def test_too_little_data_for_the_block_size(tmp_path, small_tokenizer):
    path = tmp_path / "short.txt"
    path.write_text("a few words only")
    dm = LLMDataModule(
        train_data=str(path), tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path), block_size=64
    )
    with pytest.raises(ValueError, match="too few"):
        dm.prepare_data()
        dm.setup()


def _rows(n):
    return {"text": [f"row {i} of a streamed corpus with several words" for i in range(n)]}


def test_hub_dataset_path_tokenizes_rows(tmp_path, small_tokenizer, monkeypatch):
    import datasets

    calls = []

    def fake_load(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return datasets.Dataset.from_dict(_rows(300))

    monkeypatch.setattr(readers, "load_hub_dataset", fake_load)  # documents() loads the dataset
    dm = ready(
        train_data="someone/corpus",
        dataset_config="sample",
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path),
        block_size=16,
    )
    assert calls[0] == ("someone/corpus", "sample", "train", False)
    assert small_tokenizer.decode(dm.train_dataset.tokens[:12].tolist()).startswith("row 0 of a")


def test_streaming_packs_blocks_and_holds_out_validation(tmp_path, small_tokenizer, monkeypatch):
    import datasets

    stream = datasets.Dataset.from_dict(_rows(400)).to_iterable_dataset(num_shards=2)
    monkeypatch.setattr(sources, "load_hub_dataset", lambda *a, **k: stream)
    dm = ready(
        train_data="someone/corpus",
        streaming=True,
        val_documents=50,
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path),
        block_size=16,
        batch_size=2,
    )
    train = next(iter(dm.train_dataloader()))
    val = next(iter(dm.val_dataloader()))
    assert train["input_ids"].shape == (2, 16)
    assert torch.equal(train["input_ids"][0, 1:], train["labels"][0, :-1])
    assert small_tokenizer.decode(val["input_ids"][0].tolist()).startswith("row 0 ")
    assert small_tokenizer.decode(train["input_ids"][0].tolist()).startswith("row 50 ")
    assert dm.contract.val_bytes_per_token > 1


def test_local_saved_dataset_is_read_with_datasets(tmp_path, small_tokenizer):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_dict(_rows(200))}).save_to_disk(str(tmp_path / "saved"))
    dm = ready(
        train_data=str(tmp_path / "saved"),
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path / "c"),
        block_size=16,
    )
    assert small_tokenizer.decode(dm.train_dataset.tokens[:12].tolist()).startswith("row 0 of a")
    streamed = ready(
        train_data=str(tmp_path / "saved"),
        streaming=True,
        val_documents=10,
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path / "c"),
        block_size=16,
        batch_size=1,
    )
    first = next(iter(streamed.train_dataloader()))
    assert small_tokenizer.decode(first["input_ids"][0].tolist()).startswith("row 10 ")


def test_hub_tokenizer_offline_fails_with_its_name(tmp_path):
    dm = LLMDataModule(tokenizer="someone/missing-tokenizer", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="someone/missing-tokenizer"):
        dm.prepare_data()
