"""Callbacks that let a person see a run: speed, samples, loss curve, and the final model directory."""

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


class SampleGeneration(Callback):
    """Print (and save to ``samples.txt``) a short generation after each validation.

    Args:
        prompt: Text to continue; empty starts from end-of-text (a fresh document).
        max_new_tokens: Length of the sample.
        temperature: Sampling temperature (0 is greedy).
        top_k: Sample only among the k most likely tokens.
    """

    def __init__(
        self, prompt: str = "", max_new_tokens: int = 64, temperature: float = 0.8, top_k: int | None = 50
    ) -> None:
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.temperature, self.top_k = temperature, top_k

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.max_new_tokens <= 0:
            return
        tokenizer = getattr(pl_module, "tokenizer", None)
        if tokenizer is None:
            return
        if getattr(pl_module, "pipeline", None) is not None:
            text = self.sample_through_pipeline(pl_module, tokenizer)  # every process takes part
        else:
            # Under FSDP every forward pass gathers the shards from all processes, so every rank generates
            # (the same tokens, for the same number of steps); otherwise rank 0 alone.
            sharded = any(hasattr(p, "full_tensor") for p in pl_module.backbone.parameters())
            if not (trainer.is_global_zero or sharded):
                return
            text = self.sample(pl_module, tokenizer, fixed_length=sharded)
        if not trainer.is_global_zero:
            return
        if getattr(pl_module, "template", None) is not None:
            text = f"\n>>> {text}"  # an instruction and the model's answer, not a continuation
        pl_module.print(f"\n--- sample at step {trainer.global_step} ---\n{self.prompt}{text}\n---")
        out = Path(trainer.default_root_dir) / "samples.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"--- step {trainer.global_step} ---\n{self.prompt}{text}\n")

    def prompt_ids(self, pl_module: L.LightningModule, tokenizer) -> list[int]:
        """The sample's prompt as token ids (through the chat template when the module has one)."""
        template = getattr(pl_module, "template", None)
        text = template.prompt([{"role": "user", "content": self.prompt}]) if template is not None else self.prompt
        return tokenizer.encode(text) if text else [tokenizer.eot_id]

    def sample_through_pipeline(self, pl_module: L.LightningModule, tokenizer) -> str:
        """``sample`` under pipeline parallelism: each new token is one forward pass of the whole context through
        the stages (no key/value cache: a stage holds a part of the model), sampled on the last stage and
        sent to every stage. Collective: every process runs it, for ``max_new_tokens`` steps."""
        from litllm.infer.generate import sample_next

        pipeline, device = pl_module.pipeline, pl_module.device
        ids, new = self.prompt_ids(pl_module, tokenizer), []
        block = pl_module.config.block_size
        generator = torch.Generator(device=device).manual_seed(1234)
        was_training = pipeline.module.training
        pipeline.module.eval()
        try:
            with torch.no_grad():
                for _ in range(self.max_new_tokens):
                    context = (ids + new)[-block:]
                    x = torch.zeros(1, block, dtype=torch.long, device=device)  # one shape: one schedule
                    x[0, : len(context)] = torch.tensor(context, device=device)
                    logits = pipeline.logits(x)
                    token = None
                    if logits is not None:
                        row = logits[:, len(context) - 1].float()
                        finite = bool(torch.isfinite(row).all())
                        token = sample_next(row, self.temperature, self.top_k, None, generator) if finite else None
                        token = token.reshape(()) if token is not None else torch.tensor(-1)
                    token = int(pipeline.from_last_stage(token))
                    if token < 0:
                        return "(no sample: the model's output probabilities are not finite)"
                    new.append(token)
        finally:
            pipeline.module.train(was_training)
        if tokenizer.eot_id in new:
            new = new[: new.index(tokenizer.eot_id)]
        return tokenizer.decode(new, skip_special_tokens=True)

    def sample(self, pl_module: L.LightningModule, tokenizer, fixed_length: bool = False) -> str:
        """Generate from the module's backbone; the text ends before the first end-of-text token.

        ``fixed_length`` always runs ``max_new_tokens`` forward passes (no stop at end-of-text), so that
        processes taking part in sharded forward passes make the same number of collective calls.
        """
        from litllm.infer.generate import generate

        model = pl_module.backbone
        ids = self.prompt_ids(pl_module, tokenizer)
        prompt = torch.tensor([ids], dtype=torch.long, device=pl_module.device)
        generator = torch.Generator(device=pl_module.device).manual_seed(1234)
        was_training = model.training
        model.eval()
        try:
            out = generate(
                model,
                prompt,
                self.max_new_tokens,
                temperature=self.temperature,
                top_k=self.top_k,
                eos_id=None if fixed_length else tokenizer.eot_id,
                generator=generator,
            )
        except RuntimeError as err:  # a diverging model's probabilities are not finite: report, do not crash
            if "probability tensor" not in str(err):
                raise
            return "(no sample: the model's output probabilities are not finite)"
        finally:
            model.train(was_training)
        new_ids = out[0, len(ids) :].tolist()
        if tokenizer.eot_id in new_ids:
            new_ids = new_ids[: new_ids.index(tokenizer.eot_id)]
        return tokenizer.decode(new_ids, skip_special_tokens=True)


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
