import json

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

from litllm.model.tokenizer import EOT, Tokenizer, train_bpe


def test_round_trips_text(small_tokenizer):
    text = "ROMEO: But soft! what light through yonder window breaks?\n\tUnicode: café ✓ 日本"
    ids = small_tokenizer.encode(text)
    assert small_tokenizer.decode(ids) == text
    assert small_tokenizer.vocab_size == 512


def test_end_of_text_is_one_special_token(small_tokenizer):
    ids = small_tokenizer.encode(f"the end{EOT}")
    assert ids[-1] == small_tokenizer.eot_id
    assert small_tokenizer.eot_id == 0  # the first special token


def test_save_and_load_keep_fingerprint(small_tokenizer, tmp_path):
    path = small_tokenizer.save(tmp_path / "model")
    assert path.name == "tokenizer.json"
    loaded = Tokenizer.from_file(tmp_path / "model")
    assert loaded.fingerprint() == small_tokenizer.fingerprint()
    assert loaded.encode("To be, or not to be") == small_tokenizer.encode("To be, or not to be")


def test_training_is_deterministic(shakespeare_path):
    a = train_bpe([shakespeare_path], vocab_size=300)
    b = train_bpe([shakespeare_path], vocab_size=300)
    assert a.fingerprint() == b.fingerprint()


def test_loads_a_foreign_tokenizer_with_its_own_eos(tmp_path):
    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.add_special_tokens(["</s>"])
    backend.save(str(tmp_path / "tokenizer.json"))
    assert Tokenizer.from_file(tmp_path / "tokenizer.json").eot_token == "</s>"


def test_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        Tokenizer.from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ValueError, match="bad.json"):
        Tokenizer.from_file(tmp_path / "bad.json")


def test_tokenizer_without_end_of_text_is_refused():
    backend = HFTokenizer(models.BPE())
    with pytest.raises(ValueError, match="end-of-text"):
        Tokenizer(backend)
