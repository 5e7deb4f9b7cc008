"""Pretraining and supervised finetuning: predict the next token where the labels say so.

Pretraining labels every token; SFT labels only the responses (-100 elsewhere). Full, LoRA and QLoRA
finetuning are the same module: the method is configuration of the shared base (``LLMModule``).
"""

from __future__ import annotations

import torch

from litllm.parallel.vocab import cross_entropy
from litllm.train.base import LLMModule
from litllm.train.distributed import global_mean


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor, compiled: bool = False) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not -100 (computed in float32; logits may be split
    over the vocabulary, ``litllm.parallel.vocab``; ``compiled``: through ``torch.compile``)."""
    return cross_entropy(logits, labels, compiled=compiled)


def summed_token_loss(logits: torch.Tensor, labels: torch.Tensor, compiled: bool = False) -> torch.Tensor:
    """Sum of the cross-entropies of positions whose label is not -100 (computed in float32)."""
    return cross_entropy(logits, labels, reduction="sum", compiled=compiled)


class PretrainModule(LLMModule):
    """Next-token prediction on packed blocks of text."""

    pipeline_support = True

    def pipeline_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # packed text: the micro-batch's mean; padded batches: its summed token losses (see pipeline_training_step)
        return summed_token_loss(logits, labels) if self.padded_labels else next_token_loss(logits, labels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.pipeline is not None:
            return self.pipeline_training_step(batch, batch_idx)
        labels = batch["labels"]
        logits = self.model(batch["input_ids"])
        if not self.padded_labels:
            # Packed text: every micro-batch holds the same number of labelled tokens, so the plain mean
            # already weighs every token of the step equally (and skips the normalisation pass).
            loss = next_token_loss(logits, labels, self.hparams.compile)
            self.train_loss = loss.detach()
            if self.is_logging_step():  # the global batch's loss, whatever the number of processes
                self.log("train/loss", global_mean(self.trainer, loss), prog_bar=True, on_step=True, on_epoch=False)
            return loss
        loss_sum = summed_token_loss(logits, labels, self.hparams.compile)
        tokens = self.count_loss_tokens(labels)
        self.train_loss = loss_sum.detach() / tokens.clamp(min=1)
        if self.is_logging_step():  # the token mean of the global batch (processes hold different numbers)
            loss = global_mean(self.trainer, self.train_loss, tokens)
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        # Summed, not averaged: LLMModule divides the gradients by the tokens of the whole optimizer step
        # (all micro-batches, all processes), so the loss does not depend on how the batch was split.
        return loss_sum

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        labels = batch["labels"]
        tokens = (labels != -100).sum()
        if self.pipeline is not None:
            # The summed token losses of the micro-batches, handed from the last stage to every stage, so
            # that every process updates the metric (and logs val/loss) alike.
            loss_sum = self.pipeline.eval_step(*self.pipeline_batch(batch), summed_token_loss)
            self.val_loss.update(loss_sum / tokens.clamp(min=1), weight=tokens)
            return
        loss = next_token_loss(self.model(batch["input_ids"]), labels, self.hparams.compile)
        self.val_loss.update(loss, weight=tokens)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)


class SFTModule(PretrainModule):
    """Supervised finetuning on instruction data: the loss covers response tokens only.

    Use with ``LLMDataModule(mode="sft")``, whose labels are -100 on prompts and padding, and with
    ``method`` ``full``, ``lora`` or ``qlora``.
    """
