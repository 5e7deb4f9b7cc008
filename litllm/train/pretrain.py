"""Pretraining and supervised finetuning: predict the next token where the labels say so.

Pretraining labels every token; SFT labels only the responses (-100 elsewhere). Full, LoRA and QLoRA
finetuning are the same module: the method is configuration of the shared base (``LLMModule``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from litllm.train.base import LLMModule


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not -100 (computed in float32)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


class PretrainModule(LLMModule):
    """Next-token prediction on packed blocks of text."""

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        labels = batch["labels"]
        logits = self.model(batch["input_ids"])
        if not self.padded_labels:
            # Packed text: every micro-batch holds the same number of labelled tokens, so the plain mean
            # already weighs every token of the step equally (and skips the normalisation pass).
            loss = next_token_loss(logits, labels)
            self.train_loss = loss.detach()
            if self.is_logging_step():
                self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
            return loss
        loss_sum = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum")
        tokens = self.count_loss_tokens(labels)
        self.train_loss = loss_sum.detach() / tokens.clamp(min=1)
        if self.is_logging_step():
            self.log("train/loss", self.train_loss, prog_bar=True, on_step=True, on_epoch=False)
        # Summed, not averaged: LLMModule divides the gradients by the tokens of the whole optimizer step
        # (all micro-batches, all processes), so the loss does not depend on how the batch was split.
        return loss_sum

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        labels = batch["labels"]
        loss = next_token_loss(self.model(batch["input_ids"]), labels)
        self.val_loss.update(loss, weight=(labels != -100).sum())

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)


class SFTModule(PretrainModule):
    """Supervised finetuning on instruction data: the loss covers response tokens only.

    Use with ``LLMDataModule(mode="sft")``, whose labels are -100 on prompts and padding, and with
    ``method`` ``full``, ``lora`` or ``qlora``.
    """
