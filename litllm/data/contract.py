"""What a set-up data module promises the training modules: one typed object instead of attribute probes.

``LLMDataModule.setup`` ends with a ``DataContract``; ``LLMModule`` reads it (``LLMModule.data_contract``)
to take the tokenizer and template, size the vocabulary, choose how losses are normalised, check the
context length and convert validation loss to bits per byte. Each source's builder returns its
datasets and its contract together as a ``Built``.

The batch layouts, all with ``input_ids`` and ``labels`` of shape ``(rows, length)`` where
``labels[r, t]`` is the token that follows ``input_ids[r, t]`` (made by ``next_token_sample``):

- ``blocks``: fixed-length blocks of text; every label counts.
- ``padded``: instruction examples padded to the longest in the batch; -100 on prompts and padding.
- ``pairs``: preference pairs, padded like ``padded``; rows ``[:B]`` are the chosen responses and rows
  ``[B:]`` the rejected ones (``litllm.data.preference.stack_pairs`` / ``split_pairs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset

from litllm.model.templates import Template
from litllm.model.tokenizer import Tokenizer

BatchLayout = Literal["blocks", "padded", "pairs"]
"""How the rows of a batch are laid out (see the module docstring)."""

Collate = Callable[[list[dict[str, torch.Tensor]]], dict[str, torch.Tensor]]
"""Turns a list of samples into a batch; None in a ``Built`` means PyTorch's default (stacking)."""


def next_token_sample(ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``n + 1`` token ids -> a training sample: ``n`` inputs, each with the next token as its target.

    ``labels`` (same length as ``ids``) are the targets before the shift when some of them are masked
    (-100 on a prompt); None takes the ids themselves. The one place the shift happens, for every dataset.
    """
    return {"input_ids": ids[:-1], "labels": (ids if labels is None else labels)[1:]}


@dataclass(frozen=True)
class DataContract:
    """What the training module may rely on once the data module is set up.

    Attributes:
        tokenizer: The tokenizer the data was encoded with; the model is trained with it and saves it.
        block_size: ``data.block_size``, which must fit the model's context.
        layout: How batch rows are laid out (``blocks``, ``padded`` or ``pairs``).
        template: The prompt template of instruction and preference data (saved with the model); None for text.
        added_tokens: Special tokens the template added to ``tokenizer`` (a pretrained embedding table
            grows to ``vocab_size`` for them).
        val_bytes_per_token: UTF-8 bytes per validation token (turns nats/token into bits/byte); None if unknown.
        unigram_loss: Validation loss of a model that knows only token frequencies; None if not computed.
        data_fingerprint: Identity of the training data (file contents, dataset name, or the prepared manifest).
    """

    tokenizer: Tokenizer
    block_size: int
    layout: BatchLayout = "blocks"
    template: Template | None = None
    added_tokens: tuple[str, ...] = ()
    val_bytes_per_token: float | None = None
    unigram_loss: float | None = None
    data_fingerprint: str | None = None

    @property
    def padded_labels(self) -> bool:
        """Whether labels hold -100 (prompts, padding), so losses are normalised per labelled token.

        False for text blocks, where every micro-batch holds the same number of labelled tokens.
        """
        return self.layout != "blocks"

    @property
    def vocab_size(self) -> int:
        """The vocabulary the model needs: the tokenizer's, including ``added_tokens``."""
        return self.tokenizer.vocab_size

    def bits_per_byte(self, loss_nats_per_token: float) -> float:
        """Convert a validation loss to bits per UTF-8 byte (NaN when bytes per token are unknown)."""
        if not self.val_bytes_per_token:
            return math.nan
        return loss_nats_per_token / math.log(2) / self.val_bytes_per_token


@dataclass(frozen=True)
class Built:
    """What a source's builder returns: the two datasets, how to batch them, and the contract."""

    train: Dataset
    val: Dataset
    contract: DataContract
    collate: Collate | None = None
