"""Training from token files: the shards of a prepared directory, or one token cache.

The prepared format (manifest, shard names, dtype rule) is ``litllm.corpus.format``'s;
``load_manifest`` (re-exported here) checks a directory before any training starts. This module adds
what training needs on top: the tokenizer checks against the manifest, and ``ShardedTokenBlocks``,
the one dataset of fixed-length blocks cut from token files (``TokenBlocks`` is its one-file case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from litllm.corpus.format import DTYPES, FORMAT, MANIFEST, VERSION, Manifest, Shard, is_prepared, load_manifest
from litllm.data.contract import next_token_sample
from litllm.errors import DataError
from litllm.model.tokenizer import Tokenizer

__all__ = [
    "DTYPES",
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "Manifest",
    "Shard",
    "ShardedTokenBlocks",
    "Span",
    "check_tokenizer",
    "is_prepared",
    "load_manifest",
    "load_tokenizer",
    "next_token_sample",
]


def check_tokenizer(manifest: Manifest, tokenizer: Tokenizer, name: str = "data.tokenizer") -> None:
    """Refuse a tokenizer other than the one the shards were made with (token ids would mean other text).

    ``name`` says where the tokenizer came from, for the message.
    """
    fingerprint = tokenizer.fingerprint()
    if fingerprint != manifest.tokenizer_fingerprint:
        raise DataError(
            f"{manifest.root} was tokenized with tokenizer {manifest.tokenizer_fingerprint} but {name} is "
            f"{fingerprint}; re-run litllm prepare or point data.tokenizer at {manifest.tokenizer_file}"
        )


def load_tokenizer(manifest: Manifest, path: str | Path | None = None, name: str = "data.tokenizer") -> Tokenizer:
    """The tokenizer to train with: ``path`` (checked against the manifest) or the directory's own copy.

    Its end-of-text id is the manifest's, whatever token the tokenizer would guess on its own.
    """
    if path is None:
        path, name = manifest.tokenizer_file, str(manifest.tokenizer_file)
    tokenizer = Tokenizer.from_file(path)
    check_tokenizer(manifest, tokenizer, name)
    if tokenizer.eot_id != manifest.eot_id:
        token = tokenizer.backend.id_to_token(manifest.eot_id)
        if token is None:
            raise DataError(f"{manifest.root}: eot_id {manifest.eot_id} is not a token of {path}")
        tokenizer = Tokenizer(tokenizer.backend, eot_token=token)
    return tokenizer


@dataclass(frozen=True)
class Span:
    """The tokens ``[start, stop)`` of one flat token file: what blocks are cut from."""

    path: Path
    dtype: str
    start: int
    stop: int


class ShardedTokenBlocks(Dataset):
    """Fixed-length samples cut from spans of token files (a prepared directory's shards, or one cache file).

    Within each span, block ``i`` is ``tokens[start + i*T : start + i*T + T + 1]`` split into input and
    next-token target, so consecutive blocks do not overlap and every token is predicted once per epoch;
    blocks never cross spans, so a span's last partial block is left out. Blocks are numbered globally
    over all spans in order, and the dataset holds the blocks ``[start, stop)`` of that numbering, so
    training and validation can be cut from one directory. Files are opened lazily with ``np.memmap``
    (the dataset pickles cheaply to workers).
    """

    def __init__(self, spans: Sequence[Span], block_size: int, start: int = 0, stop: int | None = None) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.spans, self.block_size = list(spans), block_size
        per_span = np.array([max(0, (s.stop - s.start - 1) // block_size) for s in self.spans], dtype=np.int64)
        # first[k] = global number of span k's first block; first[-1] = blocks in all spans
        self.first = np.concatenate([[0], np.cumsum(per_span)])
        total = int(self.first[-1])
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ValueError(f"block range [{start}, {stop}) is outside the {total} blocks of the shards")
        self._blocks = (start, stop)
        self._shards: dict[int, np.memmap] = {}

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, block_size: int, start: int = 0, stop: int | None = None
    ) -> ShardedTokenBlocks:
        """The blocks ``[start, stop)`` of a verified prepared directory (all of them by default)."""
        spans = [Span(s.path, manifest.dtype, 0, s.tokens) for s in manifest.shards]
        return cls(spans, block_size, start, stop)

    @property
    def start(self) -> int:
        """Global number of this dataset's first block."""
        return self._blocks[0]

    @property
    def stop(self) -> int:
        """Global number one past this dataset's last block."""
        return self._blocks[1]

    @property
    def total_blocks(self) -> int:
        """Blocks in all spans, whatever this dataset's range."""
        return int(self.first[-1])

    def __len__(self) -> int:
        return self._blocks[1] - self._blocks[0]

    def locate(self, i: int) -> tuple[int, int]:
        """Span number and token offset in its file of sample ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        g = self._blocks[0] + i
        k = int(np.searchsorted(self.first, g, side="right")) - 1
        return k, self.spans[k].start + (g - int(self.first[k])) * self.block_size

    def shard(self, k: int) -> np.memmap:
        """The whole token file of span ``k``, memory-mapped (once per process)."""
        if k not in self._shards:
            span = self.spans[k]
            self._shards[k] = np.memmap(span.path, dtype=np.dtype(span.dtype), mode="r")
        return self._shards[k]

    def block(self, i: int) -> np.ndarray:
        """The ``block_size + 1`` token ids of sample ``i``."""
        k, lo = self.locate(i)
        return self.shard(k)[lo : lo + self.block_size + 1]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return next_token_sample(torch.from_numpy(self.block(i).astype(np.int64)))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_shards": {}}

    def spans_until(self, i: int) -> list[Span]:
        """The spans cut where block ``i`` (of this dataset) starts, plus the one token its predecessor
        predicts: the tokens of blocks ``[0, i)``, for re-cutting them another way."""
        k, offset = self.locate(i)
        return [*self.spans[:k], Span(self.spans[k].path, self.spans[k].dtype, self.spans[k].start, offset + 1)]

    def sample(self, max_tokens: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Evenly spaced blocks covering at most ``max_tokens`` tokens (all blocks if they fit).

        Returns their inputs concatenated (``block_size`` tokens per block) and the list of their
        targets: statistics over a large directory without reading all of it.
        """
        n = len(self)
        count = min(n, max(1, max_tokens // self.block_size))
        picks = np.unique(np.linspace(0, n - 1, count).round().astype(np.int64)) if n else []
        blocks = [np.asarray(self.block(int(i))) for i in picks]
        inputs = np.concatenate([b[:-1] for b in blocks]) if blocks else np.zeros(0, np.int64)
        return inputs, [b[1:] for b in blocks]


def document_starts(tokens: np.ndarray, eot_id: int, block_size: int) -> np.ndarray:
    """Offsets into ``tokens`` of blocks aligned to documents: one at every document's first token and one
    every ``block_size`` tokens after it while the document lasts (its end-of-text excluded), each with the
    ``block_size + 1`` tokens a sample needs still inside ``tokens``.

    A document is what lies between two end-of-text tokens (the first starts at offset 0).
    """
    n = len(tokens)
    doc_starts = np.concatenate([[0], np.flatnonzero(np.asarray(tokens) == eot_id) + 1]).astype(np.int64)
    doc_starts = doc_starts[doc_starts < n]
    doc_ends = np.append(doc_starts[1:], n)
    content = doc_ends - doc_starts - (doc_ends < n)  # a document's tokens, its closing end-of-text aside
    counts = np.maximum(0, -(-content // block_size))  # ceil: one block per block_size of content
    rank_in_doc = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = np.repeat(doc_starts, counts) + block_size * rank_in_doc
    return starts[starts + block_size + 1 <= n]


class DocumentAlignedBlocks(ShardedTokenBlocks):
    """``ShardedTokenBlocks`` whose blocks start where documents start (``document_starts`` per span).

    A document longer than a block continues in the next blocks; a block that outlasts its document goes on
    into the next one, as unaligned blocks do. The offsets are found once, by scanning the spans for
    end-of-text (one pass over the tokens at setup). Short documents each start a block, so blocks may
    overlap and an epoch may hold more blocks than unaligned cutting gives.
    """

    def __init__(self, spans: Sequence[Span], block_size: int, eot_id: int) -> None:
        super().__init__([], block_size)
        self.spans = list(spans)
        self.offsets = [
            span.start + document_starts(self.shard(k)[span.start : span.stop], eot_id, block_size)
            for k, span in enumerate(self.spans)
        ]
        self.first = np.concatenate([[0], np.cumsum([len(o) for o in self.offsets])]).astype(np.int64)
        self._blocks = (0, int(self.first[-1]))
        self._shards = {}  # opened again lazily in each process

    def locate(self, i: int) -> tuple[int, int]:
        """Span number and token offset in its file of sample ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self.first, i, side="right")) - 1
        return k, int(self.offsets[k][i - int(self.first[k])])
