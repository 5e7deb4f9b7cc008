"""Pretraining on a ``litllm prepare`` directory: blocks cut from its token shards, nothing tokenized here."""

from __future__ import annotations

import numpy as np

from litllm.data.builders.text import built_blocks
from litllm.data.contract import Built
from litllm.data.shards import DocumentAlignedBlocks, ShardedTokenBlocks, check_tokenizer, is_prepared, load_manifest
from litllm.data.text import unigram_loss
from litllm.data.tokenizer_source import TokenizerSource
from litllm.errors import ConfigError, DataError

STATS_TRAIN_TOKENS = 1 << 22
"""Prepared data: the unigram baseline counts token frequencies in at most this many training tokens."""
STATS_VAL_TOKENS = 1 << 19
"""Prepared data: bytes per token and the unigram baseline use at most this many validation tokens."""


class PreparedBuilder:
    """Blocks from a prepared directory: training = the first blocks, validation = the last (or ``val_data``).

    Args:
        prepared: The prepared directory (``data.prepared``).
        val_data: Another prepared directory to validate on; None holds out ``val_fraction`` of the blocks.
        val_fraction: Share of the blocks held out for validation when ``val_data`` is None.
        tokenizer: ``data.tokenizer``, which must be the one the shards were made with; unset, the directory's copy.
        block_size: Tokens per sample.
    """

    def __init__(
        self,
        prepared: str,
        val_data: str | None,
        val_fraction: float,
        tokenizer: TokenizerSource,
        block_size: int,
        align_documents: bool = False,
    ) -> None:
        self.prepared, self.val_data, self.val_fraction = prepared, val_data, val_fraction
        self.tokenizer, self.block_size, self.align_documents = tokenizer, block_size, align_documents

    def prepare(self) -> None:
        """Check the directory (a bad one fails here, before any process starts training); fetch a hub tokenizer."""
        load_manifest(self.prepared)
        self.tokenizer.fetch_for_prepared()

    def build(self, rank: int = 0, world_size: int = 1) -> Built:
        """Open the shards, split training and validation blocks and estimate the statistics from a sample."""
        block_size = self.block_size
        manifest = load_manifest(self.prepared)
        tokenizer = self.tokenizer.for_prepared(manifest, self.prepared)
        total = ShardedTokenBlocks.from_manifest(manifest, block_size).total_blocks
        if self.val_data is None:
            n_val = int(total * self.val_fraction)
            if n_val < 1 or total - n_val < 1:
                raise DataError(
                    f"{self.prepared} holds {total:,} blocks of block_size+1={block_size + 1} tokens: too few "
                    f"to hold out val_fraction={self.val_fraction} for validation"
                )
            train = ShardedTokenBlocks.from_manifest(manifest, block_size, 0, total - n_val)
            val = ShardedTokenBlocks.from_manifest(manifest, block_size, total - n_val, total)
            if self.align_documents:  # the same training tokens, cut at documents
                full = ShardedTokenBlocks.from_manifest(manifest, block_size)
                train = DocumentAlignedBlocks(full.spans_until(total - n_val), block_size, manifest.eot_id)
        else:
            if not is_prepared(self.val_data):
                raise ConfigError(
                    f"with data.prepared, data.val_data must be another prepared directory (no manifest.json in "
                    f"{self.val_data}); run litllm prepare on it, or leave data.val_data unset to hold out "
                    f"data.val_fraction of {self.prepared}"
                )
            val_manifest = load_manifest(self.val_data)
            check_tokenizer(val_manifest, tokenizer, f"the tokenizer of {self.prepared}")
            train = ShardedTokenBlocks.from_manifest(manifest, block_size)
            if self.align_documents:
                train = DocumentAlignedBlocks(train.spans, block_size, manifest.eot_id)
            val = ShardedTokenBlocks.from_manifest(val_manifest, block_size)
        for name, ds in (("training", train), ("validation", val)):
            if len(ds) == 0:
                source = self.prepared if name == "training" else self.val_data
                raise DataError(f"{source}: no shard holds block_size+1={block_size + 1} tokens")
        # Statistics of evenly spaced blocks: exact for small data, bounded work for billions of tokens.
        train_inputs, _ = train.sample(STATS_TRAIN_TOKENS)
        _, val_targets = val.sample(STATS_VAL_TOKENS)
        texts = tokenizer.backend.decode_batch([t.tolist() for t in val_targets], skip_special_tokens=False)
        val_tokens = np.concatenate(val_targets)
        bytes_per_token = sum(len(t.encode("utf-8")) for t in texts) / len(val_tokens)
        baseline = unigram_loss(train_inputs, val_tokens, max(tokenizer.vocab_size, manifest.vocab_size))
        origin = f"{self.prepared} ({manifest.total_tokens:,} tokens in {len(manifest.shards)} shards): "
        return built_blocks(
            train, val, tokenizer, block_size, bytes_per_token, baseline, manifest.fingerprint(), origin
        )
