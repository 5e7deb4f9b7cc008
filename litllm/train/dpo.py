"""Direct Preference Optimization (Rafailov et al. 2023) and variants.

For a prompt x with a chosen answer y_w and a rejected answer y_l, with sequence log-probabilities
under the policy (pi) and a frozen reference (ref):

    h = [log pi(y_w|x) - log ref(y_w|x)] - [log pi(y_l|x) - log ref(y_l|x)]
    sigmoid (DPO):      loss = -log sigmoid(beta * h)                    (ln 2 when pi == ref)
    cdpo (conservative): labels flipped with probability label_smoothing
    ipo:                loss = (h - 1 / (2 * beta))^2

The reference is a frozen copy of the starting weights for full DPO; for LoRA/QLoRA DPO it is the same
network with its adapters switched off, so the base weights exist once in memory.

Under pipeline parallelism the batch's rows are reordered so that every micro-batch holds whole pairs
(its chosen rows, then their rejected rows); the reference's log-probs are computed first, forward only,
through the reference's own pipeline (full DPO: its stages cut like the policy's) or through the policy's
with the adapters off (LoRA), and each micro-batch's loss on the last stage reads its pairs' reference
log-probs.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from litllm.data.preference import split_pairs
from litllm.errors import ConfigError
from litllm.parallel.vocab import cross_entropy
from litllm.train.base import LLMModule
from litllm.train.distributed import fsdp_mesh, global_mean, shard


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(label) over positions whose label is not -100, per row (logits may be split over the
    vocabulary, ``litllm.parallel.vocab``)."""
    return -cross_entropy(logits, labels, reduction="none").sum(dim=-1)


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


def preference_metrics(losses: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch's mean loss and implicit rewards, from ``preference_loss``'s per-pair outputs."""
    return {
        "loss": losses.mean(),
        "reward_chosen": chosen.mean(),
        "reward_rejected": rejected.mean(),
        "reward_margin": (chosen - rejected).mean(),
        "accuracy": (chosen > rejected).float().mean(),
    }


def pair_order(pairs: int, microbatches: int) -> torch.Tensor:
    """The row order that gives each of ``microbatches`` equal micro-batches whole pairs: its chosen rows, then
    their rejected rows (a batch holds the chosen rows of its ``pairs`` pairs, then their rejected rows)."""
    k = pairs // microbatches
    chosen = torch.arange(pairs).view(microbatches, k)
    return torch.cat([chosen, chosen + pairs], dim=1).reshape(-1)


@contextlib.contextmanager
def adapters_off(module: torch.nn.Module):
    """Switch off the LoRA adapters of every peft layer inside ``module`` (e.g. a pipeline stage)."""
    layers = [m for m in module.modules() if hasattr(m, "enable_adapters") and hasattr(m, "base_layer")]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


class DPOModule(LLMModule):
    """Preference alignment on pairs from ``LLMDataModule(mode="preference")``.

    Args (besides those of ``LLMModule``):
        beta: Strength of the pull towards the reference (higher: stay closer).
        loss_type: ``sigmoid`` (DPO), ``cdpo`` (conservative DPO, with ``label_smoothing``) or ``ipo``.
        label_smoothing: Assumed share of mislabelled pairs for ``cdpo``.
    """

    pipeline_support = True

    def __init__(
        self,
        *args: Any,
        beta: float = 0.1,
        loss_type: Literal["sigmoid", "cdpo", "ipo"] = "sigmoid",
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.reference_pipeline = None  # full DPO under a pipeline: the reference's own stages
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
        if self.peft_model is not None or self.hparams.method != "full":
            return  # the reference is the policy with its adapters switched off
        if self.pipeline is not None:  # cut into stages as the policy is, frozen
            from litllm.parallel.pipeline import build_pipeline

            strategy, device = self.trainer.strategy, self._device_for_build()
            with torch.device(device):
                reference = self.base_model().requires_grad_(False)
            stage, self.reference_pipeline = build_pipeline(reference, self.device_mesh, strategy, device)
            bf16 = self.device.type == "cuda" and "bf16" in str(self.trainer.precision)
            shard(stage, fsdp_mesh(stage, self.device_mesh, strategy), torch.bfloat16 if bf16 else None)
            self.reference_model = stage.eval()
            return
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
        return preference_metrics(losses, chosen, rejected)

    def pipeline_dpo_step(self, batch: dict[str, torch.Tensor], batch_idx: int, train: bool) -> dict[str, torch.Tensor]:
        """``dpo_step`` through the pipeline (module docstring): the training batch's forward and backward, or
        a validation batch's forward; the metrics, the same on every stage."""
        pipeline = self.pipeline
        ids, labels = self.pipeline_batch(batch)
        pairs = ids.size(0) // 2
        # training batches split as the schedule does (check_pipeline_support: the micro-batches divide the
        # pairs); a validation batch into the most micro-batches that divide its pairs (a last, smaller one)
        n = pipeline.microbatches if train else max(k for k in range(1, pipeline.microbatches + 1) if pairs % k == 0)
        order = pair_order(pairs, n).to(ids.device)
        ids, labels = ids[order], labels[order]
        reference: list[torch.Tensor] = []

        def reference_logprobs(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            reference.append(sequence_logprobs(logits, rows).detach())
            return torch.zeros((), device=rows.device)

        if self.reference_pipeline is not None:
            self.reference_pipeline.eval_step(ids, labels, reference_logprobs, microbatches=n)
        else:
            with adapters_off(self.model):
                pipeline.eval_step(ids, labels, reference_logprobs, microbatches=n)
        accumulate = self.start_pipeline_step(batch_idx) if train else 1
        parts: list[tuple[torch.Tensor, ...]] = []

        def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            # target: the micro-batch's labels with its rows' reference log-probs as a last column (float64
            # holds both exactly), split into micro-batches by the schedule along with the rows
            policy, ref = sequence_logprobs(logits, target[:, :-1].long()), target[:, -1].float()
            losses, chosen, rejected = preference_loss(
                *split_pairs(policy), *split_pairs(ref), self.beta, self.loss_type, self.label_smoothing
            )
            parts.append((losses.detach(), chosen, rejected))
            return losses.sum() / (pairs * accumulate)  # the batch's mean, as Lightning divides it for accumulation

        # A schedule's first use also calls the loss function once, before the micro-batches, to infer shapes:
        # the last n calls are the micro-batches'.
        if pipeline.is_last:
            labels = torch.cat([labels.double(), torch.cat(reference[-n:]).double().unsqueeze(1)], dim=1)
        if train:
            pipeline.train_step(ids, labels, loss_fn)
        else:
            pipeline.eval_step(ids, labels, loss_fn, microbatches=n)
        out = preference_metrics(*(torch.cat(x) for x in zip(*parts[-n:]))) if parts else {}  # the last stage's
        return {key: pipeline.from_last_stage(out.get(key)) for key in self.val_metrics}

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.pipeline is not None:
            out = self.pipeline_dpo_step(batch, batch_idx, train=True)
            self.train_loss = out["loss"]
        else:
            out = self.dpo_step(batch)
            self.train_loss = out["loss"].detach()
        if self.is_logging_step():  # means over the global batch (every process holds as many pairs)
            for key, value in out.items():
                value = global_mean(self.trainer, value)
                self.log(f"train/{key}", value, on_step=True, on_epoch=False, prog_bar=key in ("loss", "accuracy"))
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = (
            self.pipeline_dpo_step(batch, batch_idx, train=False) if self.pipeline is not None else self.dpo_step(batch)
        )
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
