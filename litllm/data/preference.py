"""Preference pairs for DPO: a prompt with a chosen and a rejected response, tokenized with one template.

Each pair becomes two examples that share the prompt; labels are -100 on the prompt so that the
log-probability of a response sums over response tokens only. A batch stacks the chosen examples
on top of the rejected ones: rows ``[:B]`` are chosen, ``[B:]`` rejected. ``stack_pairs`` (the
collate) and ``split_pairs`` (used by ``litllm.train.dpo``) are the two ends of that layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from litllm.data.contract import Collate, next_token_sample
from litllm.data.instruct import Example, RecordFields, Report, encode, encode_records, pad_collate, to_messages
from litllm.model.templates import Template
from litllm.model.tokenizer import Tokenizer


@dataclass
class PreferenceFields(RecordFields):
    """Where each part of a preference record lives: the instruction fields and the two responses."""

    chosen: str = "chosen"
    rejected: str = "rejected"


def pair_messages(record: dict, fields: PreferenceFields) -> tuple[list, list]:
    """The conversation ending in the chosen answer and the one ending in the rejected answer."""
    for key in (fields.chosen, fields.rejected):
        if key not in record:
            raise ValueError(f"missing field {key!r}")
        if not isinstance(record[key], str):
            raise ValueError(f"field {key!r} is not a string")
        if not record[key].strip():
            raise ValueError("empty response")
    if record[fields.chosen].strip() == record[fields.rejected].strip():
        raise ValueError("chosen and rejected are identical")
    # the prompt: chat messages without a final answer, or the Alpaca fields (any output field is ignored)
    prompt_record = dict(record)
    if fields.messages in record:
        messages = record[fields.messages]
        if (
            isinstance(messages, list)
            and messages
            and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "assistant"
        ):
            messages = messages[:-1]
        prompt_record[fields.messages] = [*messages, {"role": "assistant", "content": "x"}]
    else:
        prompt_record[fields.output] = "x"
    prompt = to_messages(prompt_record, fields)[:-1]
    return (
        [*prompt, {"role": "assistant", "content": record[fields.chosen]}],
        [*prompt, {"role": "assistant", "content": record[fields.rejected]}],
    )


Pair = tuple[Example, Example]
"""The encoded chosen and rejected conversations of one record."""


class PreferenceDataset(Dataset):
    """Encoded pairs; each item holds the chosen and the rejected sample, already shifted."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {}
        for side, (ids, labels) in zip(("chosen", "rejected"), self.pairs[i]):
            for key, value in next_token_sample(torch.tensor(ids), torch.tensor(labels)).items():
                item[f"{side}_{key}"] = value
        return item


def stack_pairs(pad_id: int) -> Collate:
    """The collate of preference data: chosen rows over rejected rows, padded together to the longest of either.

    A batch of ``B`` pairs has ``2B`` rows: row ``i`` is pair ``i``'s chosen response, row ``B + i`` its
    rejected one. ``split_pairs`` is the inverse, for the training side.
    """
    pad = pad_collate(pad_id)

    def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        sides = ("chosen", "rejected")  # every chosen row first, then every rejected row
        return pad([{"input_ids": b[f"{s}_input_ids"], "labels": b[f"{s}_labels"]} for s in sides for b in batch])

    return collate


def split_pairs(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split anything computed per row of a ``stack_pairs`` batch into its chosen and its rejected half."""
    if rows.size(0) % 2:
        raise ValueError(f"a batch of preference pairs has an even number of rows, not {rows.size(0)}")
    n = rows.size(0) // 2
    return rows[:n], rows[n:]


def build_pairs(
    records: Iterator[tuple[str, dict]],
    fields: PreferenceFields,
    template: Template,
    tokenizer: Tokenizer,
    max_length: int,
    on_bad_record: str,
    report: Report,
) -> list[Pair]:
    """Encode preference records, skipping (or rejecting, by ``on_bad_record``) the ones that cannot be used."""

    def to_pair(record: dict) -> tuple[Pair, list[Example], bool]:
        encoded = [encode(m, template, tokenizer, max_length) for m in pair_messages(record, fields)]
        pair = ((encoded[0][0], encoded[0][1]), (encoded[1][0], encoded[1][1]))
        return pair, list(pair), any(truncated for _, _, truncated in encoded)

    return encode_records(records, to_pair, max_length, on_bad_record, report)
