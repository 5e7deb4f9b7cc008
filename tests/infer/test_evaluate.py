import json
import math

import pytest
import torch
import torch.nn.functional as F

from litllm.errors import DataError
from litllm.infer.evaluate import evaluate_tokens, read_texts, token_stream
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT


def test_token_stream_predicts_every_text_token_once(small_tokenizer):
    docs = ["ROMEO:\nHello é.", "JULIET:\nGood night."]
    ids, n_bytes = token_stream(docs, small_tokenizer)
    assert ids[0] == small_tokenizer.eot_id
    assert small_tokenizer.decode(ids[1:]) == "ROMEO:\nHello é.<|endoftext|>JULIET:\nGood night.<|endoftext|>"
    assert n_bytes == sum(len(d.encode("utf-8")) for d in docs)
    # max_tokens stops after the document that reaches it
    assert token_stream(docs, small_tokenizer, max_tokens=1)[0] == ids[: len(small_tokenizer.encode(docs[0])) + 2]


def test_a_uniform_model_scores_log_vocab(small_tokenizer):
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=16)).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: each token has probability 1/512
    ids, n_bytes = token_stream(["a short text " * 20], small_tokenizer)
    results = evaluate_tokens(model, ids, n_bytes, batch_size=3)
    assert results["tokens"] == len(ids) - 1
    assert results["loss"] == pytest.approx(math.log(512), rel=1e-6)
    assert results["perplexity"] == pytest.approx(512, rel=1e-5)
    assert results["bits_per_byte"] == pytest.approx((len(ids) - 1) * 9 / n_bytes, rel=1e-6)  # log2(512) = 9


def test_windows_match_a_direct_computation():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=16)).eval()
    ids = torch.randint(0, 512, (50,)).tolist()  # 49 predictions: windows of 16, 16, 16 and 1
    results = evaluate_tokens(model, ids, n_bytes=100, batch_size=2)
    t = torch.tensor(ids)
    nats = 0.0
    with torch.no_grad():
        for s in range(0, 49, 16):
            n = min(16, 49 - s)
            nats += F.cross_entropy(model(t[None, s : s + n])[0], t[s + 1 : s + n + 1], reduction="sum").item()
    assert results["tokens"] == 49
    assert results["loss"] == pytest.approx(nats / 49, rel=1e-5)


def test_read_texts_from_jsonl_and_a_saved_dataset(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"body": "one"}) + "\n" + json.dumps({"body": "two"}) + "\n")
    assert list(read_texts(str(path), text_field="body")) == ["one", "two"]
    with pytest.raises(DataError, match=r"d.jsonl:1: record has no field 'text'"):
        list(read_texts(str(path)))

    import datasets

    datasets.Dataset.from_dict({"text": ["alpha", "beta"]}).save_to_disk(str(tmp_path / "ds"))
    assert list(read_texts(str(tmp_path / "ds"), split="train")) == ["alpha", "beta"]
