import json

import pytest
import torch

from litllm.data import LLMDataModule
from litllm.data.instruct import IGNORE, RecordFields, Report, build_examples, encode, pack, pad_collate, to_messages
from litllm.errors import DataError
from litllm.model.model_dir import ModelDir
from litllm.model.templates import get_template

RECORD = {"instruction": "Name a color.", "input": "", "output": "Blue."}


@pytest.mark.parametrize("template", ["alpaca", "chatml"])
def test_labels_mark_exactly_the_response_tokens(small_tokenizer, template):
    tok = small_tokenizer
    tpl = get_template(template)
    if tpl.special_tokens:
        tok = type(tok)(tok.backend.__class__.from_str(tok.backend.to_str()))
        tok.backend.add_special_tokens(list(tpl.special_tokens))
    messages = to_messages(RECORD, RecordFields())
    ids, labels, truncated = encode(messages, tpl, tok, max_length=512)
    assert not truncated and len(ids) == len(labels)
    learned = [i for i, label in zip(ids, labels) if label != IGNORE]
    end = "<|endoftext|>" if template == "alpaca" else "<|im_end|>"
    assert tok.decode(learned) == "Blue." + end  # the response and its end marker, nothing else
    prompt_len = len(tok.encode(tpl.prompt(messages[:1])))
    assert all(label == IGNORE for label in labels[:prompt_len])
    _, all_labels, _ = encode(messages, tpl, tok, max_length=512, train_on_prompt=True)
    assert all_labels == ids


def test_multi_turn_chat_learns_every_assistant_turn(small_tokenizer):
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Farewell."},
        ]
    }
    ids, labels, _ = encode(to_messages(record, RecordFields()), get_template("alpaca"), small_tokenizer, 512)
    learned = small_tokenizer.decode([i for i, label in zip(ids, labels) if label != IGNORE])
    assert learned == "Hello.<|endoftext|>Farewell.<|endoftext|>"


def test_batches_pad_to_the_longest_example():
    collate = pad_collate(pad_id=0)
    batch = collate(
        [
            {"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([6, 7, 8])},
            {"input_ids": torch.tensor([5]), "labels": torch.tensor([9])},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[6, 7, 8], [9, IGNORE, IGNORE]]


def test_truncation_and_packing():
    examples = [([1] * 5, [1] * 5), ([2] * 4, [2] * 4), ([3] * 6, [3] * 6)]
    packed = pack(examples, max_length=9)
    assert [len(ids) for ids, _ in packed] == [9, 6]
    assert packed[0][0] == [1] * 5 + [2] * 4


def test_bad_records_are_counted_with_their_first_location(tmp_path, small_tokenizer):
    path = tmp_path / "data.jsonl"
    lines = [RECORD, {"instruction": "no output"}, {**RECORD, "output": "  "}, {**RECORD, "output": 7}, RECORD]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    from litllm.data.instruct import read_records

    report = Report()
    examples = build_examples(
        read_records(str(path)), RecordFields(), get_template("alpaca"), small_tokenizer, 256, False, "skip", report
    )
    assert len(examples) == 2 and report.kept == 2 and report.read == 5
    assert report.skipped == {"missing field 'output'": 1, "empty response": 1, "field 'output' is not a string": 1}
    assert report.first_bad["empty response"] == f"{path}:3"
    assert "3 records" not in report.summary("x") and "first at" in report.summary("x")
    with pytest.raises(DataError, match=r"data\.jsonl:2: missing field 'output'"):
        build_examples(
            read_records(str(path)),
            RecordFields(),
            get_template("alpaca"),
            small_tokenizer,
            256,
            False,
            "error",
            Report(),
        )


def test_custom_field_names(small_tokenizer):
    fields = RecordFields(instruction="q", input="ctx", output="a")
    messages = to_messages({"q": "Why?", "ctx": "sky", "a": "Rayleigh."}, fields)
    assert messages[0] == {"role": "user", "content": "Why?", "input": "sky"}


def test_sft_data_module_splits_records_and_saves_template(tmp_path, small_tokenizer):
    dm = LLMDataModule(
        mode="sft",
        train_data="instructions",
        tokenizer=str(small_tokenizer.path),
        block_size=256,
        batch_size=4,
        cache_dir=str(tmp_path),
    )
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_dataset) + len(dm.val_dataset) <= 1100 and len(dm.val_dataset) == 110
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[1] <= 256
    assert (batch["labels"] != IGNORE).any()
    ModelDir(tmp_path).save_template(dm.contract.template)
    assert ModelDir(tmp_path).template().name == "alpaca"


def test_sft_without_tokenizer_asks_for_one(tmp_path):
    from litllm.errors import ConfigError

    with pytest.raises(ConfigError, match="data.tokenizer"):
        LLMDataModule(mode="sft", train_data="instructions", cache_dir=str(tmp_path)).prepare_data()
