"""Pipeline parallelism on the module's side: what ``LLMModule`` does differently when its strategy is a
pipeline (``MeshStrategy(pipeline_parallel_size > 1)``, see ``litllm.parallel.pipeline``).

The schedule runs forward and backward of every micro-batch inside ``training_step``, so Lightning's
``backward`` and gradient zeroing step aside, the gradient norm (for logging, clipping and the divergence
guard) is the whole model's, summed over the stages, and the tied head's two copies are kept equal.
Runs a pipeline cannot take are refused in one line (``check_pipeline_support``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L
import torch

from litllm.errors import ConfigError
from litllm.train.distributed import fsdp_mesh, global_mean, shard
from litllm.train.optim import full_value
from litllm.train.optim import gradient_norm as optim_gradient_norm

if TYPE_CHECKING:
    from litllm.parallel.pipeline import Pipeline

PAD_MULTIPLE = 64
"""Padded batches go through a pipeline right-padded to a multiple of this many tokens: the schedule keeps
a stage with receive buffers for every batch shape it meets, and finetuning batches are as long as their
longest example, so without the rounding almost every length would add one."""


class PipelineTraining:
    """Mixin of ``LLMModule``: its behaviour under a pipeline (``self.pipeline`` set by ``configure_model``)."""

    pipeline_support: bool = False
    """Whether the stage trains under pipeline parallelism: it then defines ``pipeline_loss(logits, labels)``,
    the loss of one micro-batch from the last stage's logits: its mean over tokens for packed text, the sum
    of its token losses for padded batches (``check_pipeline_support`` refuses a pipeline for any other
    stage, so nothing else calls it)."""
    pipeline: Pipeline | None = None
    """This process's side of the pipeline under ``MeshStrategy(pipeline_parallel_size>1)``, else None."""

    def is_pipelined(self, mesh) -> bool:
        """Whether this run trains under a pipeline; one ``ConfigError`` line when it cannot."""
        if mesh is None or pipeline_stages(self.trainer.strategy) == 1:
            return False
        check_pipeline_support(self, self.trainer, getattr(self.trainer.datamodule, "batch_size", None))
        return True

    def pipeline_stage(self, model: torch.nn.Module, mesh) -> torch.nn.Module:
        """This process's stage of ``model`` (``self.pipeline`` runs it): its blocks split over the tensor-parallel
        group (if any), then FSDP2-sharded over its data-parallel replicas."""
        from litllm.parallel.pipeline import build_pipeline

        gpt = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA: the adapted GPT
        model, self.pipeline = build_pipeline(gpt, mesh, self.trainer.strategy, self._device_for_build())
        bf16 = self.device.type == "cuda" and "bf16" in str(self.trainer.precision)
        shard(model, fsdp_mesh(model, mesh, self.trainer.strategy), torch.bfloat16 if bf16 else None)
        return model

    def pipeline_training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One training batch through the pipeline: forward and backward of every micro-batch (the schedule's).

        Returns the batch's mean loss, the same on every stage. The backward pass has run by then, so
        ``backward`` does nothing under a pipeline, and the gradients are zeroed here, before it, rather
        than by Lightning (which zeroes them after ``training_step``).
        """
        accumulate = self.start_pipeline_step(batch_idx)
        if self.padded_labels:
            # Padded batches (finetuning): micro-batches hold different numbers of labelled tokens. Their
            # summed token losses go backward, divided as Lightning divides under accumulation; the
            # gradients are then divided by the step's tokens (normalize_by_tokens), as without a pipeline.
            tokens = self.count_loss_tokens(batch["labels"])
            scale = 1.0 / accumulate
        else:
            # Each micro-batch's mean loss, divided as the gradient of the whole batch's mean needs (every
            # micro-batch of packed text holds as many tokens) and as Lightning divides under accumulation.
            tokens = None
            scale = 1.0 / (self.pipeline.microbatches * accumulate)

        def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return self.pipeline_loss(logits, labels) * scale

        input_ids, labels = self.pipeline_batch(batch)
        loss = self.pipeline.train_step(input_ids, labels, loss_fn) * accumulate
        if tokens is not None:
            loss = loss / tokens.clamp(min=1)  # the batch's mean token loss, for the log
        self.train_loss = loss
        if self.is_logging_step():  # over the data-parallel replicas' batches too
            logged = global_mean(self.trainer, loss, tokens)
            self.log("train/loss", logged, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def start_pipeline_step(self, batch_idx: int) -> int:
        """Zero the gradients at the first batch of an optimizer step (the schedule's backward comes before
        Lightning's zeroing); returns the batches accumulated per step."""
        accumulate = self.trainer.accumulate_grad_batches
        if batch_idx % accumulate == 0:
            for optimizer in self.trainer.optimizers:
                optimizer.zero_grad()
        return accumulate

    def pipeline_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's token ids and labels for the pipeline: padded batches right-padded (ids 0, labels -100)
        to a multiple of ``PAD_MULTIPLE`` within the context. Causal attention keeps the real positions'
        outputs exact, and the padding carries no loss."""
        input_ids, labels = batch["input_ids"], batch["labels"]
        if not self.padded_labels:
            return input_ids, labels  # packed blocks: one shape
        length = input_ids.size(1)
        width = min(-(-length // PAD_MULTIPLE) * PAD_MULTIPLE, max(self.config.block_size, length))
        if width == length:
            return input_ids, labels
        pad = (0, width - length)
        return torch.nn.functional.pad(input_ids, pad, value=0), torch.nn.functional.pad(labels, pad, value=-100)

    def adapted_model(self, state: dict[str, torch.Tensor]):
        """A fresh LoRA model (the starting model adapted as ``configure_model`` adapts it) holding ``state``,
        the weights a pipeline gathered from its stages, adapters included: the adapter and the merged model
        are exported from it as without a pipeline."""
        from litllm.model.adapters import DEFAULT_LORA_TARGETS, adapt

        hp = self.hparams
        targets = hp.lora_targets or list(DEFAULT_LORA_TARGETS)
        model = adapt(self.base_model(), hp.method, hp.lora_r, hp.lora_alpha, hp.lora_dropout, targets)
        model.get_base_model().load_state_dict(state)
        return model

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if self.pipeline is None:  # under a pipeline, the schedule ran the backward pass in training_step
            super().backward(loss, *args, **kwargs)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        if self.pipeline is None:  # under a pipeline, pipeline_training_step zeroes them before its backward
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)

    def gradient_norm(self, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """This step's gradient norm (after ``normalize_by_tokens``, before clipping); under a pipeline,
        the norm of the whole model's gradient, every stage's part included."""
        if self.pipeline is None:
            return super().gradient_norm(optimizer)
        self.pipeline.sync_tied_gradients()
        self.normalize_by_tokens()
        if self._grad_norm is None:
            parameters = self.pipeline.untied([p for g in optimizer.param_groups for p in g["params"]])
            self._grad_norm = self.pipeline.gradient_norm(full_value(optim_gradient_norm(parameters)))
        return self._grad_norm

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if self.pipeline is not None and gradient_clip_val and gradient_clip_algorithm in (None, "norm"):
            # Lightning's clipping would measure this stage's gradients only: clip by the whole model's norm.
            self.gradient_norm(optimizer)
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def pipeline_stages(strategy: Any) -> int:
    """The number of pipeline stages of ``strategy`` (1 for any strategy without a pipeline)."""
    size = getattr(strategy, "pipeline_parallel_size", 1)
    return size if isinstance(size, int) else 1


def check_pipeline_support(module: L.LightningModule, trainer: Any, batch_size: int | None = None) -> None:
    """One ``ConfigError`` line when ``trainer``'s strategy is a pipeline and ``module`` or the run cannot use it.

    ``litllm fit`` calls this before any other process starts (``batch_size``: the data module's); then
    ``configure_model`` (also for scripts), when the data is known.
    """
    stages = pipeline_stages(trainer.strategy)
    if stages == 1 or not isinstance(module, PipelineTraining):
        return
    hp = module.hparams
    if not module.pipeline_support:
        what = f"{type(module).__name__} (PretrainModule, SFTModule and DPOModule train under a pipeline)"
    elif hp.method == "qlora":
        what = "model.method=qlora (a 4-bit base): use model.method=lora or full"
    elif hp.optimizer == "muon":
        what = "model.optimizer=muon: use adamw"
    elif hp.compile:
        what = "model.compile=true"
    elif hp.cpu_offload:
        what = "model.cpu_offload=true"
    elif str(trainer.precision) == "16-mixed":
        what = "precision 16-mixed (its loss scaling would run outside the pipeline's backward): use bf16-mixed"
    elif batch_size is not None and batch_size % trainer.strategy.pipeline_microbatches:
        what = (
            f"data.batch_size={batch_size} with pipeline_microbatches={trainer.strategy.pipeline_microbatches}: "
            "the micro-batches must divide the batch"
        )
    else:
        return
    raise ConfigError(f"pipeline parallelism (pipeline_parallel_size={stages}) does not support {what}")
