"""Instruction data: records -> conversations -> token ids with a loss mask -> padded batches.

Records come in two shapes (field names configurable):
  Alpaca:  {"instruction": ..., "input": "" or ..., "output": ...}
  chat:    {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]}

Labels are the input ids with -100 wherever the model should not learn (the prompt, padding), so the
loss covers only the responses and the end marker that closes each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from litllm.corpus import readers
from litllm.data.contract import Collate, next_token_sample
from litllm.errors import DataError
from litllm.model.templates import Message, Template
from litllm.model.tokenizer import Tokenizer

IGNORE = -100
"""Label value that cross-entropy skips."""

Example = tuple[list[int], list[int]]
"""Token ids and labels (-100 where there is no loss) of one conversation, before the next-token shift."""


@dataclass
class RecordFields:
    """Where each part of a record lives."""

    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"
    messages: str = "messages"


@dataclass
class Report:
    """What happened to the records: counts, and the first place each problem was seen."""

    read: int = 0
    kept: int = 0
    truncated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first_bad: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.first_bad.setdefault(reason, where)

    def reject(self, reason: str, where: str, policy: str, detail: str | None = None) -> None:
        """Apply the bad-record policy: raise a ``DataError`` naming ``where`` (``error``) or count and go on."""
        if policy == "error":
            raise DataError(f"{where}: {detail or reason}")
        self.skip(reason, where)

    def summary(self, name: str) -> str:
        text = f"{name}: {self.kept:,} of {self.read:,} records kept"
        if self.truncated:
            text += f", {self.truncated:,} truncated to the maximum length"
        for reason, count in self.skipped.items():
            text += f"; skipped {count:,} ({reason}, first at {self.first_bad[reason]})"
        return text


def add_template_tokens(tokenizer: Tokenizer, template: Template) -> tuple[str, ...]:
    """Add the template's special tokens that ``tokenizer`` lacks (in place); returns the tokens added.

    Chat markers must be single tokens. Adding them grows the vocabulary, so the caller reports them
    (``DataContract.added_tokens``) and a pretrained embedding table grows to match.
    """
    missing = tuple(t for t in template.special_tokens if tokenizer.backend.token_to_id(t) is None)
    if missing:
        tokenizer.backend.add_special_tokens(list(missing))
    return missing


def read_records(source: str, dataset_config: str | None = None, split: str = "train") -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)``: ``where`` is ``file:line`` for local files, ``name[index]`` for datasets."""
    files = readers.resolve_files(source)
    if files is not None:
        for path in files:
            for line, record in readers.read_json_records(path):
                yield f"{path}:{line}", record
        return
    dataset = readers.load_hub_dataset(source, dataset_config, split, streaming=False)
    for i, row in enumerate(dataset):
        yield f"{source}[{i}]", dict(row)


def to_messages(record: dict[str, Any], fields: RecordFields) -> list[Message]:
    """Turn one record into a conversation; raises ``ValueError`` with the reason when it cannot."""
    if fields.messages in record:
        messages = record[fields.messages]
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"field {fields.messages!r} is not a non-empty list")
        out = []
        for m in messages:
            if (
                not isinstance(m, dict)
                or not isinstance(m.get("content"), str)
                or m.get("role") not in ("system", "user", "assistant")
            ):
                raise ValueError("a message is not {role: system|user|assistant, content: string}")
            out.append({"role": m["role"], "content": m["content"]})
        if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
            raise ValueError("empty response")
        return out
    for key in (fields.instruction, fields.output):
        if key not in record:
            raise ValueError(f"missing field {key!r}")
        if not isinstance(record[key], str):
            raise ValueError(f"field {key!r} is not a string")
    extra = record.get(fields.input) or ""
    if not isinstance(extra, str):
        raise ValueError(f"field {fields.input!r} is not a string")
    if not record[fields.output].strip():
        raise ValueError("empty response")
    return [
        {"role": "user", "content": record[fields.instruction], "input": extra},
        {"role": "assistant", "content": record[fields.output]},
    ]


def encode(
    messages: list[Message], template: Template, tokenizer: Tokenizer, max_length: int, train_on_prompt: bool = False
) -> tuple[list[int], list[int], bool]:
    """Token ids and labels of a conversation, cut to ``max_length``; the flag says whether it was cut."""
    ids: list[int] = []
    labels: list[int] = []
    for text, is_response in template.segments(messages):
        piece = tokenizer.encode(text)
        ids += piece
        labels += piece if (is_response or train_on_prompt) else [IGNORE] * len(piece)
    # the model sees ids[:-1] and predicts ids[1:]: keep max_length + 1 tokens
    truncated = len(ids) > max_length + 1
    return ids[: max_length + 1], labels[: max_length + 1], truncated


class SFTDataset(Dataset):
    """Encoded conversations; each item is already shifted into model input and next-token labels."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids, labels = self.examples[i]
        return next_token_sample(torch.tensor(ids), torch.tensor(labels))


def pack(examples: list[Example], max_length: int) -> list[Example]:
    """Concatenate consecutive short examples into sequences of at most ``max_length + 1`` tokens.

    Fewer, fuller rows mean less padding. Examples still attend to the earlier examples in their
    row (no block-diagonal mask); each ends with its end marker, which the model learns to emit.
    """
    packed: list[Example] = []
    ids: list[int] = []
    labels: list[int] = []
    for e_ids, e_labels in examples:
        if ids and len(ids) + len(e_ids) > max_length + 1:
            packed.append((ids, labels))
            ids, labels = [], []
        ids, labels = ids + e_ids, labels + e_labels
    if ids:
        packed.append((ids, labels))
    return packed


def pad_collate(pad_id: int) -> Collate:
    """A collate function that pads every sequence to the longest one in the batch (not to the context)."""

    def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(item["input_ids"].numel() for item in batch)
        input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), longest), IGNORE, dtype=torch.long)
        for row, item in enumerate(batch):
            n = item["input_ids"].numel()
            input_ids[row, :n] = item["input_ids"]
            labels[row, :n] = item["labels"]
        return {"input_ids": input_ids, "labels": labels}

    return collate


T = TypeVar("T")


def encode_records(
    records: Iterator[tuple[str, dict]],
    to_example: Callable[[dict], tuple[T, list[Example], bool]],
    max_length: int,
    on_bad_record: str,
    report: Report,
) -> list[T]:
    """Encode records with ``to_example``, skipping (or rejecting, by ``on_bad_record``) unusable ones.

    ``to_example(record)`` returns what to keep, the encoded conversations it holds and whether any was
    truncated, or raises ``ValueError`` with the reason the record cannot be used. A record one of whose
    conversations has no label left after truncation is rejected: the prompt alone fills ``max_length``.
    """
    examples = []
    for where, record in records:
        report.read += 1
        try:
            example, conversations, truncated = to_example(record)
        except ValueError as err:
            report.reject(str(err), where, on_bad_record)
            continue
        if any(all(label == IGNORE for label in labels[1:]) for _, labels in conversations):
            report.reject(
                "prompt longer than max_length",
                where,
                on_bad_record,
                f"the prompt is longer than max_length={max_length} tokens",
            )
            continue
        report.truncated += truncated
        report.kept += 1
        examples.append(example)
    return examples


def build_examples(
    records: Iterator[tuple[str, dict]],
    fields: RecordFields,
    template: Template,
    tokenizer: Tokenizer,
    max_length: int,
    train_on_prompt: bool,
    on_bad_record: str,
    report: Report,
) -> list[Example]:
    """Encode instruction records, skipping (or rejecting, by ``on_bad_record``) the ones that cannot be used."""

    def to_example(record: dict) -> tuple[Example, list[Example], bool]:
        ids, labels, truncated = encode(to_messages(record, fields), template, tokenizer, max_length, train_on_prompt)
        return (ids, labels), [(ids, labels)], truncated

    return encode_records(records, to_example, max_length, on_bad_record, report)
