"""The held-out split is made on the text: nanoGPT's cut of one document, whole documents of several, and the
tokenizer trained on the data never sees the validation text."""

import json

import pytest

from litllm.data import LLMDataModule, tokenizer_source
from litllm.data.heldout import HeldOutSplit
from litllm.data.sources import BUILTIN_CORPORA


def test_one_document_is_cut_at_the_character_nanogpt_cuts():
    text = "".join(f"line {i}\n" for i in range(1000))
    split = HeldOutSplit.of([text], 0.1)
    assert split.cut == int(0.9 * len(text))
    assert list(split.training([text])) == [text[: int(0.9 * len(text))]]
    assert list(split.validation([text])) == [text[int(0.9 * len(text)) :]]


def test_several_documents_hold_out_the_last_whole_ones():
    docs = ["a" * 100] * 10
    split = HeldOutSplit.of(docs, 0.1)
    assert (split.first_val_document, split.cut) == (9, None)
    assert list(split.training(docs)) == docs[:9] and list(split.validation(docs)) == docs[9:]
    # A huge last document: still only the last one is held out; a huge first: training keeps it.
    assert HeldOutSplit.of(["a", "b", "c" * 1000], 0.1).first_val_document == 2
    assert HeldOutSplit.of(["a" * 1000, "b", "c"], 0.5).first_val_document == 1
    uneven = ["x" * 50, "y" * 30, "z" * 10, "w" * 10]  # 20% of 100 characters: the last two
    assert HeldOutSplit.of(uneven, 0.2).first_val_document == 2
    with pytest.raises(ValueError, match="val_fraction"):
        HeldOutSplit.of(docs, 1.0)


def _spy_on_tokenizer_training(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = tokenizer_source.train_bpe

    def spy(files=None, texts=None, **kwargs):
        assert files is None, "the BPE trainer was given whole files"
        texts = list(texts)
        seen.extend(texts)
        return real(texts=iter(texts), **kwargs)

    monkeypatch.setattr(tokenizer_source, "train_bpe", spy)
    return seen


def test_shakespeare_validation_is_the_last_tenth_of_the_text_and_the_tokenizer_never_sees_it(tmp_path, monkeypatch):
    text = BUILTIN_CORPORA["shakespeare"].read_text(encoding="utf-8")
    seen = _spy_on_tokenizer_training(monkeypatch)
    dm = LLMDataModule(cache_dir=str(tmp_path), vocab_size=300, block_size=64)
    dm.prepare_data()
    dm.setup("fit")
    cut = int(0.9 * len(text))
    assert cut == 1_003_854
    assert "".join(seen) == text[:cut]  # the trainer saw the training text, nothing after the cut
    tok = dm.contract.tokenizer
    val_ids, train_ids = dm.val_dataset.tokens.tolist(), dm.train_dataset.tokens.tolist()
    assert val_ids[-1] == train_ids[-1] == tok.eot_id
    assert tok.decode(val_ids[:-1]) == text[cut:]
    assert tok.decode(train_ids[:-1]) == text[:cut]


def test_records_hold_out_their_last_documents_and_the_tokenizer_never_sees_them(tmp_path, monkeypatch):
    path = tmp_path / "docs.jsonl"
    docs = [f"document {i}: " + "the king speaks. " * (5 + i % 7) for i in range(200)]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    seen = _spy_on_tokenizer_training(monkeypatch)
    dm = LLMDataModule(train_data=str(path), cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=16)
    dm.prepare_data()
    dm.setup("fit")
    first = HeldOutSplit.of(docs, 0.1).first_val_document
    assert 170 < first < 190
    assert "".join(seen) == "".join(docs[:first])
    tok = dm.contract.tokenizer
    assert tok.decode(dm.val_dataset.tokens.tolist()) == "".join(d + tok.eot_token for d in docs[first:])


def test_a_streamed_source_trains_its_tokenizer_after_the_validation_documents(tmp_path, monkeypatch):
    import datasets

    from litllm.data import sources

    rows = {"text": [f"row {i} of a streamed corpus with several words\n" for i in range(300)]}
    stream = datasets.Dataset.from_dict(rows).to_iterable_dataset()
    monkeypatch.setattr(sources, "load_hub_dataset", lambda *a, **k: stream)
    seen = _spy_on_tokenizer_training(monkeypatch)
    dm = LLMDataModule(
        train_data="someone/corpus", streaming=True, val_documents=50, cache_dir=str(tmp_path), vocab_size=280
    )
    dm.prepare_data()
    assert seen == rows["text"][50:]
