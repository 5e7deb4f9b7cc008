"""``LLMModule``: what every training stage shares.

It builds the backbone (in ``configure_model``, so a sharding strategy can wrap it), groups the
parameters for weight decay, makes AdamW with linear warmup + cosine decay, keeps the validation
metrics, and stores the model config and tokenizer inside every Lightning checkpoint. A stage
(pretraining, SFT, DPO) only adds its loss in ``training_step`` / ``validation_step``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MeanMetric

from litllm._moved import warn_renamed
from litllm.data.contract import DataContract
from litllm.data.module import LLMDataModule
from litllm.data.sampler import data_parallel_split
from litllm.errors import ConfigError
from litllm.model.adapters import grow_vocabulary
from litllm.model.config import resolve_config
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Template
from litllm.model.tokenizer import Tokenizer
from litllm.train import optim
from litllm.train.callbacks import write_metrics
from litllm.train.checkpoints import check_fits, describe_run
from litllm.train.distributed import check_training_loaders, fsdp_mesh, recompute_block_activations, shard
from litllm.train.optim import configure_optimization, parameter_groups, scale_gradients
from litllm.train.pipelined import PipelineTraining


class LLMModule(PipelineTraining, optim.OneGradientNorm, L.LightningModule):
    def __init__(
        self,
        arch: str = "tiny-gpt2",
        arch_overrides: dict[str, Any] | None = None,
        init_from: str | None = None,
        checkpoint: str | None = None,
        vocab_size: int | None = None,
        learning_rate: float = 3e-4,
        min_lr_ratio: float = 0.1,
        warmup_steps: int = 100,
        max_steps: int | None = None,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        optimizer_impl: Literal["auto", "fused", "foreach", "for-loop"] = "auto",
        compile: bool = False,
        method: Literal["full", "lora", "qlora"] = "full",
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_targets: list[str] | None = None,
        quant_type: Literal["nf4", "fp4"] = "nf4",
        activation_checkpointing: bool = False,
        optimizer: Literal["adamw", "adamw8bit", "muon"] = "adamw",
        cpu_offload: bool = False,
        lr_schedule: Literal["cosine", "wsd"] = "cosine",
        decay_fraction: float = 0.2,
        decay_shape: Literal["linear", "cosine", "sqrt"] = "sqrt",
        muon_lr: float = 0.02,
        muon_momentum: float = 0.95,
    ) -> None:
        """
        Args:
            arch: A preset name from ``litllm presets`` (e.g. ``gpt2-124m``, ``llama-125m``) or a config.json path.
            arch_overrides: Fields of the model config to change, e.g. ``{n_layer: 4, dropout: 0.1}``.
            init_from: A model directory (``litllm fit`` or ``convert from-hf`` writes one) to start from
                instead of random weights; its config replaces ``arch`` and its tokenizer is the run's.
            checkpoint: Deprecated name of ``init_from``.
            vocab_size: Size of the embedding table; None takes the tokenizer's vocabulary size.
            learning_rate: Peak learning rate, reached at the end of warmup.
            min_lr_ratio: Final learning rate as a fraction of the peak (cosine decay ends there).
            warmup_steps: Optimizer steps of linear warmup from 0.
            max_steps: Length of the schedule in optimizer steps; None uses the Trainer's estimate.
            weight_decay: AdamW decoupled weight decay for matrices (not biases, norms or embeddings).
            betas: AdamW betas.
            eps: AdamW epsilon.
            optimizer_impl: AdamW kernel. ``auto`` picks ``fused`` unless gradient clipping is combined
                with fp16 loss scaling (``16-mixed``: a fused AdamW unscales itself), ``foreach`` there.
            compile: Run the backbone and the loss through ``torch.compile`` (slow first step, faster after).
            method: ``full`` trains every weight; ``lora`` freezes the model and trains low-rank adapters
                (peft); ``qlora`` also stores the frozen base in 4-bit (bitsandbytes) and needs ``init_from``.
            lora_r: LoRA rank.
            lora_alpha: LoRA scaling numerator (the update is scaled by alpha / r).
            lora_dropout: Dropout on the LoRA branch input.
            lora_targets: Linear layers to adapt, by short name: qkv, proj (attention), gate, up, down (MLP),
                lm_head. None: ``[qkv, proj]``.
            quant_type: 4-bit data type of the frozen base for ``qlora``.
            activation_checkpointing: Recompute each block's activations during backward (less memory,
                about a third more compute).
            optimizer: ``adamw`` (torch), ``adamw8bit`` (bitsandbytes: optimizer state in 8 bits, about a
                quarter of the memory) or ``muon``: ``torch.optim.Muon`` (``muon_lr``, ``muon_momentum``) on
                the 2-D weights inside the blocks, AdamW (``learning_rate``, ``betas``) on the rest.
            cpu_offload: Under FSDP (ModelParallelStrategy), keep the sharded parameters, gradients and
                optimizer state in CPU memory and compute on the GPU.
            lr_schedule: After warmup, ``cosine`` (to ``min_lr_ratio`` by the end) or ``wsd`` (warmup-stable-decay).
            decay_fraction: (wsd) Final share of the schedule's steps that decays to ``min_lr_ratio``.
            decay_shape: (wsd) ``linear``, ``cosine`` or ``sqrt`` (1 - sqrt(progress)).
            muon_lr: (muon) Muon's peak learning rate; the schedule scales it as it scales ``learning_rate``.
            muon_momentum: (muon) Muon's Nesterov momentum.
        """
        super().__init__()
        self.save_hyperparameters()
        if checkpoint is not None:
            warn_renamed("model.checkpoint", "model.init_from")
            init_from = init_from or checkpoint
        self.init_from: ModelDir | None = ModelDir(init_from) if init_from is not None else None
        self.config = resolve_config(
            arch, arch_overrides, self.init_from.check().config() if self.init_from is not None else None
        )
        if vocab_size is not None:
            self.config.vocab_size = vocab_size
        if method == "qlora" and self.init_from is None:
            raise ConfigError("method=qlora quantizes a pretrained model: set model.init_from to its directory")
        self.model: GPT | None = None
        self.tokenizer: Tokenizer | None = None
        self.template: Template | None = None
        self.val_loss = MeanMetric()
        self._step_tokens: torch.Tensor | None = None  # labelled tokens seen since the last optimizer step
        self.train_loss: torch.Tensor | None = None
        """Mean loss per labelled token of the latest training micro-batch (read by ``DivergenceGuard``)."""
        self.pipeline = None
        # Adapter runs checkpoint only the adapter; the base weights come from model.init_from.
        self.strict_loading = method == "full"

    # ------------------------------------------------------------------ config and model
    @property
    def data_contract(self) -> DataContract | None:
        """What the trainer's ``LLMDataModule`` promises once set up: tokenizer, template, batch layout, statistics.

        None without one: a module used alone, or fed by plain dataloaders or another data module.
        """
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        return datamodule.contract if isinstance(datamodule, LLMDataModule) else None

    def _attach_tokenizer(self) -> None:
        """Take the tokenizer from the data contract (or the starting checkpoint) and size the vocabulary."""
        if self.tokenizer is None:
            contract = self.data_contract
            if contract is not None:
                self.tokenizer, self.template = contract.tokenizer, contract.template
            elif self.init_from is not None:
                self.tokenizer = self.init_from.tokenizer()
        if self.tokenizer is None or self.model is not None:
            return
        if self.init_from is not None:
            # A pretrained table keeps its size; it grows in base_model when the data's template added
            # tokens (DataContract.added_tokens, vocab_size).
            return
        wanted = self.hparams.vocab_size or self.tokenizer.vocab_size
        if wanted < self.tokenizer.vocab_size:
            raise ConfigError(
                f"vocab_size={wanted} is smaller than the tokenizer's vocabulary ({self.tokenizer.vocab_size} tokens)"
            )
        if wanted != self.config.vocab_size:
            rank_zero_info(
                f"Model vocabulary set to {wanted} to match the tokenizer (preset had {self.config.vocab_size})"
            )
            self.config.vocab_size = wanted

    @property
    def padded_labels(self) -> bool:
        """Whether batches carry ignored (-100) labels, so token losses must be normalised per step.

        The data contract says so (False for blocks of text, where every label counts); without one, True.
        """
        contract = self.data_contract
        return contract.padded_labels if contract is not None else True

    def setup(self, stage: str) -> None:
        self._attach_tokenizer()
        contract = self.data_contract
        if contract is not None and contract.block_size > self.config.block_size:
            raise ConfigError(
                f"data.block_size={contract.block_size} is larger than the model's context "
                f"(block_size={self.config.block_size}); "
                "lower data.block_size or raise model.arch_overrides.block_size"
            )

    def configure_model(self) -> None:
        """Build the backbone. Lightning calls this inside the strategy's init context (e.g. on the meta device)."""
        if self.model is not None:
            return
        self._attach_tokenizer()
        mesh = self.device_mesh  # set by ModelParallelStrategy (FSDP2), None otherwise
        hp = self.hparams
        pipelined = self.is_pipelined(mesh)  # (a run a pipeline cannot take is refused before anything is built)
        # Under FSDP, build real weights (not on the meta device) so our init and a starting checkpoint
        # apply as in a single process; sharding below then frees all but this rank's shard.
        with torch.device(self._device_for_build()) if mesh is not None else contextlib.nullcontext():
            model = self.base_model()
        if hp.activation_checkpointing:
            recompute_block_activations(model)
        if hp.method != "full":
            from litllm.model.adapters import DEFAULT_LORA_TARGETS, adapt

            bf16 = self._trainer is not None and "bf16" in str(self.trainer.precision)
            targets = hp.lora_targets or list(DEFAULT_LORA_TARGETS)
            model = adapt(model, hp.method, hp.lora_r, hp.lora_alpha, hp.lora_dropout, targets, hp.quant_type, bf16)
        if pipelined:
            model = self.pipeline_stage(model, mesh)
        elif mesh is not None:
            bf16 = self.device.type == "cuda" and "bf16" in str(self.trainer.precision)
            # MeshStrategy: tensor parallelism within its groups, then FSDP2 over the data-parallel dimension;
            # Lightning's ModelParallelStrategy: FSDP2 over every process (see data_parallel_mesh).
            dp_mesh = fsdp_mesh(model, mesh, self.trainer.strategy)
            shard(model, dp_mesh, torch.bfloat16 if bf16 else None, cpu_offload=hp.cpu_offload)
        self.model = torch.compile(model) if hp.compile else model

    def _device_for_build(self) -> torch.device:
        strategy = self.trainer.strategy
        return strategy.root_device if strategy.root_device.type != "meta" else torch.device("cpu")

    def base_model(self) -> GPT:
        """A full-precision backbone: random init, or the starting checkpoint (grown to the tokenizer)."""
        model = GPT(self.config)
        if self.init_from is not None:
            self.init_from.load_weights(model)
            # The tokenizer the data contract hands over holds the tokens a template added (added_tokens).
            if self.tokenizer is not None and self.tokenizer.vocab_size > self.config.vocab_size:
                grow_vocabulary(model, self.tokenizer.vocab_size)
        return model

    @property
    def peft_model(self):
        """The peft wrapper when training adapters, else None."""
        model = getattr(self.model, "_orig_mod", self.model)
        return model if hasattr(model, "get_base_model") else None

    @property
    def backbone(self) -> GPT:
        """The uncompiled ``GPT`` module (for sampling and export)."""
        model = self.model
        if model is None:
            raise RuntimeError("the model is built in configure_model(); call it first")
        model = getattr(model, "_orig_mod", model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    # ------------------------------------------------------------------ optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Weight decay on matrices only: biases, norm gains and embedding tables are not decayed."""
        return parameter_groups(self.model, self.hparams.weight_decay)

    def schedule_steps(self) -> int:
        if self.hparams.max_steps:
            return int(self.hparams.max_steps)
        if self._trainer is not None:
            steps = self.trainer.estimated_stepping_batches
            if math.isfinite(steps):
                return int(steps)
        raise ConfigError("cannot size the learning-rate schedule: set model.max_steps or trainer.max_steps")

    def configure_optimizers(self):
        groups = self.parameter_groups() if self.hparams.optimizer != "muon" else None
        steps, sharded = self.schedule_steps(), self.device_mesh is not None
        return configure_optimization(self.model, groups, self.hparams, steps, self._trainer, sharded)

    def is_logging_step(self) -> bool:
        """True on the optimizer steps whose metrics the logger writes (every ``log_every_n_steps``).

        Per-step metrics are only logged then: each ``self.log`` call costs about a millisecond of
        Python, which is several percent of a small model's step on CPU.
        """
        return self._trainer is not None and self.trainer.global_step % self.trainer.log_every_n_steps == 0

    def count_loss_tokens(self, labels: torch.Tensor) -> torch.Tensor:
        """Count this micro-batch's labelled tokens towards the current optimizer step (see below)."""
        tokens = (labels != -100).sum()
        self._step_tokens = tokens if self._step_tokens is None else self._step_tokens + tokens
        return tokens

    def normalize_by_tokens(self) -> None:
        """Turn gradients of summed token losses into gradients of the mean over every token of the step.

        Lightning divides each micro-batch's loss by ``accumulate_grad_batches`` and DDP/FSDP average
        gradients over the data-parallel replicas, so the gradients hold sum / (accumulation * replicas);
        multiplying by accumulation * replicas / (tokens in all micro-batches of all replicas) gives the
        token mean of the whole global batch, however it was split and however much padding each piece had.
        (The processes of a tensor-parallel group share a batch: its tokens are counted once.)
        """
        if self._step_tokens is None:
            return
        tokens, self._step_tokens = self._step_tokens.float(), None
        world, replicas = self.trainer.world_size, data_parallel_split(self.trainer)[1]
        if world > 1:
            tokens = self.trainer.strategy.reduce(tokens, reduce_op="sum") * (replicas / world)
        scale_gradients(self.parameters(), replicas * self.trainer.accumulate_grad_batches / tokens.clamp(min=1))

    def on_train_start(self) -> None:
        check_training_loaders(self.trainer)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.pipeline is not None:  # before the update, whether or not anything asked for the norm
            self.pipeline.sync_tied_gradients()
        self.normalize_by_tokens()
        if self.is_logging_step():  # before clipping
            write_metrics(self.trainer, {"train/grad_norm": optim.full_value(self.gradient_norm(optimizer))})

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._grad_norm = None  # a new step: its gradient norm is computed once, when first asked for
        if self.is_logging_step():
            write_metrics(self.trainer, {"train/lr": self.trainer.optimizers[0].param_groups[0]["lr"]})

    # ------------------------------------------------------------------ validation bookkeeping
    def on_validation_epoch_end(self) -> None:
        self.log_eval_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.log_eval_metrics("test")

    def log_eval_metrics(self, prefix: str) -> None:
        """Log token-weighted mean loss, perplexity and bits per byte gathered by ``self.val_loss``."""
        if not self.val_loss.update_called:
            return
        loss = self.val_loss.compute()  # torchmetrics has already reduced across processes
        self.val_loss.reset()
        self.log(f"{prefix}/loss", loss, prog_bar=True, sync_dist=False)
        self.log(f"{prefix}/ppl", torch.exp(loss), sync_dist=False)
        contract = self.data_contract
        if contract is not None and contract.val_bytes_per_token:
            self.log(f"{prefix}/bpb", contract.bits_per_byte(float(loss)), sync_dist=False)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.peft_model is not None:
            # Only the adapter (and anything else that trains) goes into the checkpoint: megabytes, not the base.
            trainable = {name for name, p in self.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}
        describe_run(checkpoint, self.config, self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_fits(checkpoint, self.tokenizer, self.state_dict() if self.model is not None else None)

    def configure_callbacks(self):
        """Add litllm's default callbacks unless the recipe configured its own of the same kind."""
        from litllm.train.callbacks import default_callbacks

        present = {type(cb) for cb in self.trainer.callbacks} if self._trainer is not None else set()
        return [cb for cb in default_callbacks() if type(cb) not in present]
