"""Pretraining on raw text: tokenized once into a cache (``CachedTextBuilder``) or streamed (``StreamedTextBuilder``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_info

from litllm.data.contract import Built, DataContract
from litllm.data.settings import SourceSettings
from litllm.data.shards import DocumentAlignedBlocks, ShardedTokenBlocks, Span
from litllm.data.text import StreamingTokenBlocks, TokenBlocks, build_token_cache, load_token_cache, unigram_loss
from litllm.data.tokenizer_source import TokenizerSource
from litllm.model.tokenizer import Tokenizer

STREAM_BYTES_DOCUMENTS = 200
"""Streamed data: bytes per token are measured on at most this many validation documents."""


def built_blocks(
    train: ShardedTokenBlocks,
    val: ShardedTokenBlocks,
    tokenizer: Tokenizer,
    block_size: int,
    val_bytes_per_token: float,
    baseline: float,
    data_fingerprint: str,
    origin: str = "",
) -> Built:
    """The result of a builder of token blocks on disk (cached or prepared), announced in one line.

    ``origin`` opens the line (``"<directory> (<size>): "``) when the blocks come from somewhere worth naming.
    """
    rank_zero_info(
        f"Data: {origin}{len(train):,} training and {len(val):,} validation blocks of "
        f"{block_size} tokens; unigram baseline loss {baseline:.3f}"
    )
    contract = DataContract(
        tokenizer,
        block_size,
        layout="blocks",
        val_bytes_per_token=val_bytes_per_token,
        unigram_loss=baseline,
        data_fingerprint=data_fingerprint,
    )
    return Built(train, val, contract)


class CachedTextBuilder:
    """Documents -> one token cache per source (keyed by data and tokenizer) -> blocks of ``block_size``.

    Without ``val_data``, validation is the end of the training text (``litllm.data.heldout``): the text
    is split before tokenization, and each part gets its own cache.
    """

    def __init__(
        self,
        source: SourceSettings,
        tokenizer: TokenizerSource,
        cache_dir: Path,
        block_size: int,
        align_documents: bool = False,
    ) -> None:
        self.source, self.tokenizer, self.cache_dir, self.block_size = source, tokenizer, Path(cache_dir), block_size
        self.align_documents = align_documents

    def cache_for(self, data: str, tokenizer: Tokenizer, part: str = "") -> Path:
        """The token cache of ``data`` (or of its ``part``, ``train`` or ``val``, of a held-out split) encoded
        with ``tokenizer``: a directory named by both fingerprints."""
        tag = f"-{part}-{self.source.split_tag}" if part else ""
        return self.cache_dir / "tokens" / f"{self.source.fingerprint(data)}{tag}-{tokenizer.fingerprint()}"

    def _parts(self, tokenizer: Tokenizer) -> list[tuple[Path, str, str, Callable[[], Iterable[str]]]]:
        """(cache, source, part, documents) of the training and the validation data; ``part`` names the
        side of a held-out split (``train``/``val``) and is empty for a separate ``val_data``."""
        s = self.source
        if s.holds_out:
            sides = [(s.train_data, "train", s.training_documents), (s.train_data, "val", s.validation_documents)]
        else:
            sides = [(s.train_data, "", s.training_documents), (s.val_data, "", s.validation_documents)]
        return [(self.cache_for(data, tokenizer, part), data, part, docs) for data, part, docs in sides]

    def prepare(self) -> None:
        """Train (or fetch) the tokenizer if needed and tokenize each part of the data into its cache."""
        tokenizer = self.tokenizer.ensure()
        for cache, data, part, docs in self._parts(tokenizer):
            if (cache / "meta.json").is_file():
                continue  # tokenized by an earlier run with the same data, split and tokenizer
            meta = {"source": data, "text_field": self.source.text_field}
            if part:
                meta.update(part=part, split=self.source.split_tag, held_out=self.source.heldout_split().describe())
            build_token_cache(cache, docs(), tokenizer, meta=meta, desc=f"tokenizing {data} {part}".rstrip())

    def build(self, rank: int = 0, world_size: int = 1) -> Built:
        """Open the caches and cut them into training and validation blocks, with their statistics."""
        source, block_size = self.source, self.block_size
        tokenizer = self.tokenizer.open()
        (train_dir, *_), (val_dir, *_) = self._parts(tokenizer)
        if not (train_dir / "meta.json").is_file() or not (val_dir / "meta.json").is_file():
            self.prepare()  # setup() without prepare_data(), e.g. in a notebook
        train_tokens, meta = load_token_cache(train_dir)
        val_tokens, val_meta = load_token_cache(val_dir)
        if source.holds_out and min(len(train_tokens), len(val_tokens)) <= block_size:
            raise ValueError(
                f"{source.train_data!r} has {len(train_tokens) + len(val_tokens):,} tokens: too few for "
                f"block_size={block_size} with val_fraction={source.val_fraction}"
            )
        if self.align_documents:  # training blocks start at documents; validation stays cut evenly
            span = Span(train_dir / "tokens.bin", meta["dtype"], 0, len(train_tokens))
            train = DocumentAlignedBlocks([span], block_size, tokenizer.eot_id)
        else:
            train = TokenBlocks(train_dir / "tokens.bin", meta["dtype"], 0, len(train_tokens), block_size)
        val = TokenBlocks(val_dir / "tokens.bin", val_meta["dtype"], 0, len(val_tokens), block_size)
        for name, ds in (("training", train), ("validation", val)):
            if len(ds) == 0:
                raise ValueError(f"the {name} data holds fewer than block_size+1={block_size + 1} tokens")
        # Only the tokens the validation blocks cover count for bits per byte.
        covered = np.asarray(val_tokens[: len(val) * block_size + 1])
        bytes_per_token = len(tokenizer.decode(covered[1:].tolist()).encode("utf-8")) / (len(covered) - 1)
        baseline = unigram_loss(train_tokens[: len(train) * block_size], covered[1:], tokenizer.vocab_size)
        fingerprint = source.fingerprint(source.train_data)
        return built_blocks(train, val, tokenizer, block_size, bytes_per_token, baseline, fingerprint)


class StreamedTextBuilder:
    """A ``datasets`` stream packed into blocks as it is read (for corpora larger than the disk).

    Without ``val_data``, the first ``val_documents`` documents are validation and training skips them.
    Nothing is cached but the tokenizer; each process reads its own part of the stream.
    """

    def __init__(self, source: SourceSettings, tokenizer: TokenizerSource, block_size: int) -> None:
        self.source, self.tokenizer, self.block_size = source, tokenizer, block_size

    def prepare(self) -> None:
        """Train (or fetch) the tokenizer if needed; the data itself is only read while training."""
        self.tokenizer.ensure()

    def build(self, rank: int = 0, world_size: int = 1) -> Built:
        """Open the streams (split across processes) and measure bytes per token on validation documents."""
        from datasets.distributed import split_dataset_by_node

        source, block_size = self.source, self.block_size
        tokenizer = self.tokenizer.open()
        stream = source.stream(source.train_data)
        val_stream = stream.take(source.val_documents) if source.val_data is None else source.stream(source.val_data)
        train_stream = stream.skip(source.val_documents) if source.val_data is None else stream
        if world_size > 1:
            train_stream = split_dataset_by_node(train_stream, rank=rank, world_size=world_size)
            val_stream = split_dataset_by_node(val_stream, rank=rank, world_size=world_size)
        train = StreamingTokenBlocks(train_stream, tokenizer, source.text_field, block_size)
        val = StreamingTokenBlocks(val_stream, tokenizer, source.text_field, block_size)
        docs = [row[source.text_field] for row in val_stream.take(min(source.val_documents, STREAM_BYTES_DOCUMENTS))]
        n_tokens = sum(len(ids) + 1 for ids in tokenizer.encode_batch(docs)) if docs else 0
        contract = DataContract(
            tokenizer,
            block_size,
            layout="blocks",
            val_bytes_per_token=sum(len(d.encode("utf-8")) for d in docs) / n_tokens if n_tokens else None,
            data_fingerprint=source.fingerprint(source.train_data),
        )
        return Built(train, val, contract)
