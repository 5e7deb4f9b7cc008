"""Direct Preference Optimization (Rafailov et al. 2023) and variants.

For a prompt x with a chosen answer y_w and a rejected answer y_l, with sequence log-probabilities
under the policy (pi) and a frozen reference (ref):

    h = [log pi(y_w|x) - log ref(y_w|x)] - [log pi(y_l|x) - log ref(y_l|x)]
    sigmoid (DPO):      loss = -log sigmoid(beta * h)                    (ln 2 when pi == ref)
    cdpo (conservative): labels flipped with probability label_smoothing
    ipo:                loss = (h - 1 / (2 * beta))^2

The reference is a frozen copy of the starting weights for full DPO; for LoRA/QLoRA DPO it is the same
network with its adapters switched off, so the base weights exist once in memory.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from litllm.data.preference import split_pairs
from litllm.errors import ConfigError
from litllm.train.base import LLMModule
from litllm.train.distributed import fsdp_mesh, shard


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(label) over positions whose label is not -100, per row."""
    mask = labels != -100
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=-1)


def preference_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards ``beta * (log pi - log ref)`` of chosen and rejected."""
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    h = chosen_ratio - rejected_ratio
    if loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif loss_type in ("sigmoid", "cdpo"):
        eps = label_smoothing if loss_type == "cdpo" else 0.0
        losses = -F.logsigmoid(beta * h) * (1 - eps) - F.logsigmoid(-beta * h) * eps
    else:
        raise ConfigError(f"unknown DPO loss_type {loss_type!r}; choose sigmoid, cdpo or ipo")
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


class DPOModule(LLMModule):
    """Preference alignment on pairs from ``LLMDataModule(mode="preference")``.

    Args (besides those of ``LLMModule``):
        beta: Strength of the pull towards the reference (higher: stay closer).
        loss_type: ``sigmoid`` (DPO), ``cdpo`` (conservative DPO, with ``label_smoothing``) or ``ipo``.
        label_smoothing: Assumed share of mislabelled pairs for ``cdpo``.
    """

    def __init__(
        self,
        *args: Any,
        beta: float = 0.1,
        loss_type: Literal["sigmoid", "cdpo", "ipo"] = "sigmoid",
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.init_from is None:
            raise ConfigError("DPO starts from a finetuned model: set model.init_from to its directory")
        self.beta, self.loss_type, self.label_smoothing = beta, loss_type, label_smoothing
        self.reference_model = None
        # the reference is rebuilt from model.init_from, never saved: a checkpoint holds the policy only
        self.strict_loading = False
        self.val_metrics = torch.nn.ModuleDict(
            {k: MeanMetric() for k in ("loss", "reward_chosen", "reward_rejected", "reward_margin", "accuracy")}
        )

    def configure_model(self) -> None:
        if self.model is not None:
            return
        super().configure_model()
        if self.peft_model is not None:
            return  # the reference is the policy with its adapters switched off
        if self.device_mesh is None:
            self.reference_model = copy.deepcopy(self.backbone).eval().requires_grad_(False)
            return
        # FSDP2 modules cannot be deep-copied: build the reference as the policy was built (the starting
        # weights) and split it the same way (tensor parallelism, then FSDP2), frozen.
        with torch.device(self._device_for_build()):
            reference = self.base_model().requires_grad_(False)
        bf16 = self.device.type == "cuda" and "bf16" in str(self.trainer.precision)
        shard(
            reference, fsdp_mesh(reference, self.device_mesh, self.trainer.strategy), torch.bfloat16 if bf16 else None
        )
        self.reference_model = reference.eval()

    # ------------------------------------------------------------------ math
    def _logprobs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy and reference sequence log-probs of every row (chosen rows, then rejected: see ``split_pairs``)."""
        ids, labels = batch["input_ids"], batch["labels"]
        policy = sequence_logprobs(self.model(ids), labels)
        with torch.no_grad():
            if self.reference_model is not None:
                reference = sequence_logprobs(self.reference_model(ids), labels)
            else:
                with self.peft_model.disable_adapter():
                    reference = sequence_logprobs(self.model(ids), labels)
        return policy, reference

    def dpo_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        policy, reference = self._logprobs(batch)
        losses, chosen, rejected = preference_loss(
            *split_pairs(policy), *split_pairs(reference), self.beta, self.loss_type, self.label_smoothing
        )
        return {
            "loss": losses.mean(),
            "reward_chosen": chosen.mean(),
            "reward_rejected": rejected.mean(),
            "reward_margin": (chosen - rejected).mean(),
            "accuracy": (chosen > rejected).float().mean(),
        }

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.dpo_step(batch)
        self.train_loss = out["loss"].detach()
        if self.is_logging_step():
            for key, value in out.items():
                self.log(f"train/{key}", value, on_step=True, on_epoch=False, prog_bar=key in ("loss", "accuracy"))
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.dpo_step(batch)
        pairs = len(split_pairs(batch["input_ids"])[0])
        for key, value in out.items():
            self.val_metrics[key].update(value, weight=pairs)

    def on_validation_epoch_end(self) -> None:
        if not self.val_metrics["loss"].update_called:
            return
        for key, metric in self.val_metrics.items():
            self.log(f"val/{key}", metric.compute(), prog_bar=key in ("loss", "accuracy"))
            metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("reference_model.")
        }
