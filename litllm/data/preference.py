"""Preference pairs for DPO: a prompt with a chosen and a rejected response, tokenized with one template.

Each pair becomes two examples that share the prompt; labels are -100 on the prompt so that the
log-probability of a response sums over response tokens only. A batch stacks the chosen examples
on top of the rejected ones: rows ``[:B]`` are chosen, ``[B:]`` rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from litllm.data.instruct import IGNORE, RecordFields, Report, encode, pad_collate, to_messages
from litllm.model.templates import Template
from litllm.model.tokenizer import Tokenizer


@dataclass
class PreferenceFields(RecordFields):
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


class PreferenceDataset(Dataset):
    def __init__(self, pairs: list[tuple[tuple[list[int], list[int]], tuple[list[int], list[int]]]]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        (c_ids, c_labels), (r_ids, r_labels) = self.pairs[i]
        return {
            "chosen_input_ids": torch.tensor(c_ids[:-1]),
            "chosen_labels": torch.tensor(c_labels[1:]),
            "rejected_input_ids": torch.tensor(r_ids[:-1]),
            "rejected_labels": torch.tensor(r_labels[1:]),
        }


def preference_collate(pad_id: int):
    """Stack chosen rows over rejected rows, padded together to the longest of either."""
    pad = pad_collate(pad_id)

    def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        rows = [{"input_ids": b["chosen_input_ids"], "labels": b["chosen_labels"]} for b in batch]
        rows += [{"input_ids": b["rejected_input_ids"], "labels": b["rejected_labels"]} for b in batch]
        return pad(rows)

    return collate


def build_pairs(
    records: Iterator[tuple[str, dict]],
    fields: PreferenceFields,
    template: Template,
    tokenizer: Tokenizer,
    max_length: int,
    on_bad_record: str,
    report: Report,
) -> list:
    pairs = []
    for where, record in records:
        report.read += 1
        try:
            chosen, rejected = pair_messages(record, fields)
            encoded = [encode(m, template, tokenizer, max_length) for m in (chosen, rejected)]
        except ValueError as err:
            report.reject(str(err), where, on_bad_record)
            continue
        if any(all(label == IGNORE for label in labels[1:]) for _, labels, _ in encoded):
            report.reject(
                "prompt longer than max_length",
                where,
                on_bad_record,
                f"the prompt is longer than max_length={max_length} tokens",
            )
            continue
        report.truncated += any(t for _, _, t in encoded)
        report.kept += 1
        pairs.append(tuple((ids, labels) for ids, labels, _ in encoded))
    return pairs
