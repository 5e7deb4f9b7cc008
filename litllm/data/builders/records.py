"""Finetuning on records: instructions (``SFTBuilder``) and preference pairs (``PreferenceBuilder``).

Both read JSON records or a ``datasets`` dataset, hold out a deterministic share for validation,
resolve the prompt template, add its special tokens to the tokenizer (reported in the contract, so
that the model's vocabulary grows to match) and encode each record with it. They differ in what a
record becomes and how a batch is laid out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from litllm.data.contract import BatchLayout, Built, Collate, DataContract
from litllm.data.instruct import (
    Report,
    SFTDataset,
    add_template_tokens,
    build_examples,
    pack,
    pad_collate,
    read_records,
)
from litllm.data.preference import PreferenceDataset, build_pairs, stack_pairs
from litllm.data.settings import RecordSettings, SourceSettings
from litllm.data.tokenizer_source import TokenizerSource
from litllm.errors import ConfigError, DataError
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Template, get_template
from litllm.model.tokenizer import Tokenizer


class RecordsBuilder(ABC):
    """What instruction and preference data share: reading, the validation split, the template and its tokens.

    Subclasses say what the records become (``encode``), how they are batched (``collate``, ``layout``).
    """

    mode: Literal["sft", "preference"]
    layout: BatchLayout

    def __init__(
        self, source: SourceSettings, tokenizer: TokenizerSource, records: RecordSettings, block_size: int
    ) -> None:
        self.source, self.tokenizer, self.records, self.block_size = source, tokenizer, records, block_size

    def prepare(self) -> None:
        """Make sure the model's tokenizer is there (fetched from the hub once per node if named so)."""
        if self.tokenizer.name is None:
            raise ConfigError(
                f"data.mode={self.mode} needs the model's tokenizer: set data.tokenizer "
                "(litllm finetune fills it in from model.checkpoint)"
            )
        self.tokenizer.ensure()

    def template(self) -> Template:
        """``data.template`` by name; else the template saved beside the tokenizer (a finetuned model), else alpaca."""
        if self.records.template is not None:
            return get_template(self.records.template)
        saved = ModelDir(self.tokenizer.file.parent).template()
        return saved or get_template("alpaca")

    def split(self) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
        """Training and validation records: ``val_data``'s, or a seeded random share of the training records."""
        source = self.source
        train = list(read_records(source.train_data, source.dataset_config, source.dataset_split))
        if source.val_data is not None:
            return train, list(read_records(source.val_data, source.dataset_config, source.dataset_split))
        order = np.random.default_rng(self.records.split_seed).permutation(len(train))
        n_val = max(1, int(len(train) * source.val_fraction))
        # Sorted: both parts keep the order of the file.
        return [train[i] for i in sorted(order[n_val:])], [train[i] for i in sorted(order[:n_val])]

    @abstractmethod
    def encode(self, records: list[tuple[str, dict]], template: Template, tokenizer: Tokenizer, report: Report) -> list:
        """The usable records, encoded (counted in ``report``)."""

    @abstractmethod
    def dataset(self, examples: list) -> Dataset:
        """A dataset of encoded records."""

    @abstractmethod
    def collate(self, pad_id: int) -> Collate:
        """How samples become a batch."""

    def build(self, rank: int = 0, world_size: int = 1) -> Built:
        """Read, split and encode the records with the template."""
        tokenizer = self.tokenizer.open()
        template = self.template()
        added = add_template_tokens(tokenizer, template)
        if added:
            rank_zero_info(f"Added {list(added)} to the tokenizer for the {template.name} template")
        datasets = []
        for name, records in zip(("training", "validation"), self.split()):
            report = Report()
            examples = self.encode(records, template, tokenizer, report)
            rank_zero_info(report.summary(f"{self.mode} {name} data"))
            if not examples:
                data = self.source.train_data if name == "training" else self.source.val_data
                raise DataError(f"no usable {name} records in {data}: {report.summary(name)}")
            datasets.append(self.dataset(examples))
        contract = DataContract(
            tokenizer,
            self.block_size,
            layout=self.layout,
            template=template,
            added_tokens=added,
            data_fingerprint=self.source.fingerprint(self.source.train_data),
        )
        return Built(datasets[0], datasets[1], contract, self.collate(tokenizer.eot_id))


class SFTBuilder(RecordsBuilder):
    """Instruction records -> conversations with the loss on the responses, padded per batch (or packed)."""

    mode = "sft"
    layout = "padded"

    def encode(self, records: list[tuple[str, dict]], template: Template, tokenizer: Tokenizer, report: Report) -> list:
        r = self.records
        return build_examples(
            iter(records), r.fields, template, tokenizer, r.max_length, r.train_on_prompt, r.on_bad_record, report
        )

    def dataset(self, examples: list) -> Dataset:
        return SFTDataset(pack(examples, self.records.max_length) if self.records.packing else examples)

    def collate(self, pad_id: int) -> Collate:
        return pad_collate(pad_id)


class PreferenceBuilder(RecordsBuilder):
    """Preference records -> (chosen, rejected) pairs, batched chosen rows over rejected rows."""

    mode = "preference"
    layout = "pairs"

    def encode(self, records: list[tuple[str, dict]], template: Template, tokenizer: Tokenizer, report: Report) -> list:
        r = self.records
        return build_pairs(iter(records), r.fields, template, tokenizer, r.max_length, r.on_bad_record, report)

    def dataset(self, examples: list) -> Dataset:
        return PreferenceDataset(examples)

    def collate(self, pad_id: int) -> Collate:
        return stack_pairs(pad_id)
