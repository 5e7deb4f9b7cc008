"""One builder per kind of data source, each turning its settings into datasets and a ``DataContract``.

- ``CachedTextBuilder`` (``text``): raw text tokenized once into a cache on disk, cut into blocks.
- ``StreamedTextBuilder`` (``text``): a ``datasets`` stream packed into blocks on the fly.
- ``PreparedBuilder`` (``prepared``): the token shards of a ``litllm prepare`` directory.
- ``SFTBuilder`` and ``PreferenceBuilder`` (``records``): instruction records and preference pairs.

``LLMDataModule`` picks one and calls ``prepare`` in Lightning's ``prepare_data`` (once per node: work
whose result is cached on disk) and ``build`` in ``setup`` (on every process: opening the cache).
"""

from __future__ import annotations

from typing import Protocol

from litllm.data.builders.prepared import PreparedBuilder
from litllm.data.builders.records import PreferenceBuilder, SFTBuilder
from litllm.data.builders.text import CachedTextBuilder, StreamedTextBuilder
from litllm.data.contract import Built

__all__ = [
    "Builder",
    "CachedTextBuilder",
    "PreferenceBuilder",
    "PreparedBuilder",
    "SFTBuilder",
    "StreamedTextBuilder",
]


class Builder(Protocol):
    """What the data module asks of a source's builder."""

    def prepare(self) -> None:
        """Once per node, before ``build``: fetch, train and tokenize what is cached on disk."""

    def build(self, rank: int = 0, world_size: int = 1) -> Built:
        """On every process: the datasets of this process (``rank`` of ``world_size``) and the contract."""
