"""Callbacks that let a person see a run: speed, samples (``litllm.train.samples``), loss curve, and the final
model directory."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only

from litllm.data.sampler import data_parallel_split
from litllm.model.model_dir import ModelDir
from litllm.train.distributed import full_state_dict
from litllm.train.samples import SampleGeneration  # noqa: F401 (recipes name it here: litllm.train.callbacks)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory of this process: allocated CUDA memory on GPU, resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def write_metrics(trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """Write step metrics straight to the run's loggers (on rank 0).

    For metrics nothing else reads back (speed, learning rate, gradient norm): ``self.log`` keeps
    per-key bookkeeping that costs about a millisecond per key on CPU, several percent of a small
    model's step when a handful of keys are logged.
    """
    if trainer.is_global_zero:
        values = {k: float(v) for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)


class SpeedMonitor(Callback):
    """Log tokens/s (all processes together, and per device), samples/s, MFU and peak memory every ``log_every_n_steps``.

    Tokens are counted once per data-parallel replica: the processes of a tensor- or pipeline-parallel
    group work on the same batch. ``speed/tokens_per_sec_per_device`` is the global figure over the
    world size, the number to compare between meshes and with one device.

    Args:
        peak_flops: Peak FLOP/s of one device for MFU. None: looked up for known GPUs, MFU skipped on CPU.
    """

    def __init__(self, peak_flops: float | None = None) -> None:
        self.peak_flops = peak_flops
        self._tokens = self._samples = 0
        self._start: float | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        ids = batch["input_ids"] if isinstance(batch, dict) else batch[0]
        self._tokens += ids.numel()
        self._samples += ids.size(0)
        step_done = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        if not step_done or trainer.global_step % trainer.log_every_n_steps != 0:
            return
        if ids.device.type == "cuda":
            torch.cuda.synchronize(ids.device)
        elapsed = time.perf_counter() - self._start
        replicas = data_parallel_split(trainer)[1]  # the processes of a tensor-parallel group share a batch
        tokens_per_sec = self._tokens * replicas / elapsed
        metrics = {
            "speed/tokens_per_sec": tokens_per_sec,
            "speed/tokens_per_sec_per_device": tokens_per_sec / trainer.world_size,
            "speed/samples_per_sec": self._samples * replicas / elapsed,
            "speed/peak_memory_gb": peak_memory_bytes(ids.device) / 1e9,
        }
        peak = self.peak_flops or gpu_peak_flops(ids.device, trainer.precision)
        config = getattr(pl_module, "config", None)
        if peak and config is not None:
            flops_per_token = config.flops_per_token(ids.size(1))
            metrics["speed/mfu"] = flops_per_token * tokens_per_sec / (peak * trainer.world_size)
        write_metrics(trainer, metrics)
        if trainer.progress_bar_callback is not None:
            pl_module.log("tok/s", tokens_per_sec, prog_bar=True, on_step=True, on_epoch=False, rank_zero_only=True)
        self._tokens = self._samples = 0
        self._start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = None  # do not count validation time as training time
        self._tokens = self._samples = 0


_GPU_PEAK_BF16 = {
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
    "4090": 165e12,
}


def gpu_peak_flops(device: torch.device, precision: str) -> float | None:
    """Dense bf16 peak of known GPUs (fp32 paths run at about a quarter or less; not tabulated)."""
    if device.type != "cuda" or "bf16" not in str(precision):
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in _GPU_PEAK_BF16.items() if k in name), None)


class LossCurve(Callback):
    """Keep the train and validation losses and draw them to ``<default_root_dir>/loss.png`` after each validation."""

    def __init__(self, filename: str = "loss.png") -> None:
        self.filename = filename
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0 and "train/loss" in trainer.callback_metrics:
            self.train.append((trainer.global_step, float(trainer.callback_metrics["train/loss"])))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_validation_end, not on_validation_epoch_end: callbacks' epoch-end hooks run before the
        # module's, so there the metrics would still hold the previous validation.
        if trainer.sanity_checking or "val/loss" not in trainer.callback_metrics:
            return
        self.val.append((trainer.global_step, float(trainer.callback_metrics["val/loss"])))
        self.plot(Path(trainer.default_root_dir) / self.filename)

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train, "val": self.val}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train, self.val = list(state_dict["train"]), list(state_dict["val"])

    @rank_zero_only
    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        if self.train:
            ax.plot(*zip(*self.train), label="train", alpha=0.7)
        if self.val:
            ax.plot(*zip(*self.val), "o-", label="validation")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


class ModelExport(Callback):
    """Keep the tokenizer beside the checkpoints and write the final model directory at the end of fit.

    Args:
        dirpath: Where the final model directory goes; None is ``<default_root_dir>/final``.
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tokenizer = getattr(pl_module, "tokenizer", None)
        if tokenizer is None or not trainer.is_global_zero:
            return
        for cb in trainer.checkpoint_callbacks:
            if getattr(cb, "dirpath", None):
                beside = ModelDir(cb.dirpath)  # so that the checkpoints can be read without the run's data
                beside.save_tokenizer(tokenizer)
                beside.save_config(pl_module.config)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        out = ModelDir(self.dirpath or Path(trainer.default_root_dir) / "final")
        tokenizer, template = getattr(pl_module, "tokenizer", None), getattr(pl_module, "template", None)
        peft_model = getattr(pl_module, "peft_model", None)
        pipeline = getattr(pl_module, "pipeline", None)
        sharded = pipeline is not None or any(hasattr(p, "full_tensor") for p in pl_module.backbone.parameters())
        if pl_module.hparams.method == "lora" and sharded:
            # LoRA under a pipeline, tensor parallelism or FSDP2: the whole model's weights (adapters included)
            # gathered on rank 0 (collective), loaded into a fresh adapted model and exported from there
            state = full_state_dict(pl_module.backbone, pipeline)
            if trainer.is_global_zero:
                self._export_adapter(pl_module, pl_module.adapted_model(state), out, tokenizer, template)
        elif peft_model is not None:
            if trainer.is_global_zero:
                self._export_adapter(pl_module, peft_model, out, tokenizer, template)
        else:
            # Collective under FSDP and pipelines: every rank takes part.
            state = full_state_dict(pl_module.backbone, getattr(pl_module, "pipeline", None))
            if trainer.is_global_zero:
                out.save(pl_module.backbone, tokenizer, template, state_dict=state)
        if trainer.is_global_zero:
            pl_module.print(f"Model directory written to {out}")

    @staticmethod
    def _export_adapter(pl_module: L.LightningModule, peft_model, out: ModelDir, tokenizer, template) -> None:
        """LoRA/QLoRA: the PEFT adapter directory beside a merged full-precision model directory."""
        from litllm.model.adapters import merge_lora, save_adapter

        adapter_dir = save_adapter(peft_model, out.path.parent / "adapter")
        base = pl_module.base_model() if pl_module.init_from is not None else None
        merged = merge_lora(peft_model, base=base)
        out.save(merged, tokenizer, template)
        pl_module.print(f"Adapter written to {adapter_dir}")


def default_callbacks() -> list[Callback]:
    from litllm.parallel.reshard import AnyLayoutResume
    from litllm.train.facts import RunFacts
    from litllm.train.guard import DivergenceGuard
    from litllm.train.resume import StepSeed

    here = [SpeedMonitor(), SampleGeneration(), LossCurve(), ModelExport()]
    return [*here, DivergenceGuard(), StepSeed(), RunFacts(), AnyLayoutResume()]
