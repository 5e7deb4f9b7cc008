"""The data module's flat ``--data.*`` arguments, grouped by concern for the builders that use them.

``LLMDataModule`` keeps its flat keyword arguments (LightningCLI exposes each one as ``--data.<name>``
and recipes set them) and hands each builder only its groups: where the data comes from
(``SourceSettings``) and how records become examples (``RecordSettings``). The tokenizer's group is
``litllm.data.tokenizer_source.TokenizerSource``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from litllm.corpus.readers import documents
from litllm.data import sources
from litllm.data.heldout import HeldOutSplit
from litllm.data.preference import PreferenceFields


@dataclass(frozen=True)
class SourceSettings:
    """Where the training and validation data come from (see ``LLMDataModule`` for each argument)."""

    train_data: str
    val_data: str | None
    val_fraction: float
    text_field: str
    dataset_config: str | None
    dataset_split: str
    streaming: bool
    val_documents: int
    _fingerprints: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Fingerprints already computed: hashing a large corpus once per run is enough."""
    _split: list[HeldOutSplit] = field(default_factory=list, init=False, repr=False, compare=False)
    """The held-out split once measured (reading every document once per run is enough)."""

    @property
    def holds_out(self) -> bool:
        """Whether validation is held out of ``train_data``'s text (no ``val_data``, not streamed)."""
        return self.val_data is None and not self.streaming

    @property
    def split_tag(self) -> str:
        """Names the held-out split in cache keys (the tokenizer trained on the training part, the token
        caches of each part): ``heldout0.1``; empty when nothing is held out of the text."""
        return f"heldout{self.val_fraction:g}" if self.holds_out else ""

    def heldout_split(self) -> HeldOutSplit:
        """Where ``train_data`` splits into training and validation text (see ``litllm.data.heldout``)."""
        if not self._split:
            self._split.append(HeldOutSplit.of(self.documents(self.train_data), self.val_fraction))
        return self._split[0]

    def training_documents(self) -> Iterator[str]:
        """The texts to train on: ``train_data``'s documents less the held-out part, if any."""
        docs = self.documents(self.train_data)
        return self.heldout_split().training(docs) if self.holds_out else docs

    def validation_documents(self) -> Iterator[str]:
        """The texts to validate on: ``val_data``'s documents, or the held-out part of ``train_data``'s."""
        if self.val_data is not None:
            return self.documents(self.val_data)
        return self.heldout_split().validation(self.documents(self.train_data))

    def fingerprint(self, source: str) -> str:
        """Identity of a data source: file contents, or dataset name + config + split.

        It keys the token caches and the trained tokenizer on disk: changing this formula would orphan
        every existing cache.
        """
        if source not in self._fingerprints:
            files = sources.resolve_files(source)
            extra = f"{self.text_field}"
            if files is not None:
                self._fingerprints[source] = sources.files_fingerprint(files, extra)
            else:
                key = f"{source}|{self.dataset_config}|{self.dataset_split}|{extra}"
                self._fingerprints[source] = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self._fingerprints[source]

    def documents(self, source: str) -> Iterator[str]:
        """The texts of a (non-streamed) source, in order."""
        return documents(source, self.text_field, self.dataset_config, self.dataset_split)

    def stream(self, source: str):
        """A source as a streamed ``datasets.IterableDataset`` of rows."""
        # Looked up on the module at call time, so that tests can substitute a local stream.
        return sources.load_hub_dataset(source, self.dataset_config, self.dataset_split, streaming=True)


@dataclass(frozen=True)
class RecordSettings:
    """How instruction and preference records become examples (see ``LLMDataModule`` for each argument)."""

    template: str | None
    fields: PreferenceFields
    max_length: int
    train_on_prompt: bool
    packing: bool
    on_bad_record: Literal["skip", "error"]
    split_seed: int
