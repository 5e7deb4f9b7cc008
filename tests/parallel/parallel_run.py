"""A short pretraining run for the parallelism tests, launched as its own process (never inside pytest).

    python parallel_run.py OUT.json --cache DIR --root DIR [--strategy auto|fsdp2|tp2|...] [--devices N]
        [--replicas R] [--arch tiny-gpt2|tiny-llama] [--n_layer L] [--steps N] [--ckpt_path P]
        [--pipeline P --pipeline_schedule gpipe|1f1b --microbatches M] [--accumulate A]
        [--tensor T --sequence_parallel]

Rank 0 writes the per-step training loss of the whole global batch (and the validation loss) to OUT.json;
the run's consolidated model directory is ``<root>/final``, its samples ``<root>/samples.txt``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import lightning as L

from litllm.data import LLMDataModule
from litllm.parallel import MeshStrategy, register_strategies
from litllm.train import PretrainModule
from litllm.train.optim import full_value


class RecordLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self._window: list[float] = []  # the losses of the batches of the current optimizer step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # The norm the module clips by (before clipping): under a pipeline, over every stage's gradients.
        self.grad_norms.append(float(full_value(pl_module.gradient_norm(optimizer))))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # as logged: the global batch's loss, whatever the mesh (litllm.train.distributed.global_mean)
        self._window.append(float(trainer.callback_metrics["train/loss"]))
        if len(self._window) == trainer.accumulate_grad_batches:  # one optimizer step: its global batch's mean
            self.losses.append(sum(self._window) / len(self._window))
            self._window = []


def main(argv: list[str] | None = None) -> None:
    """Train as the arguments say (``argv`` None: the command line; a one-process run may be called in-process)."""
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=1, help="data-parallel replicas (batch split)")
    parser.add_argument("--steps", type=int, default=12, help="stop after this many optimizer steps")
    parser.add_argument("--schedule", type=int, default=12, help="length of the learning-rate schedule")
    parser.add_argument("--arch", default="tiny-gpt2")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--ckpt_path", default=None)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--activation_checkpointing", action="store_true")
    parser.add_argument("--qk_norm", action="store_true", help="RMS-normalise queries and keys per head")
    parser.add_argument("--val_batches", type=int, default=0, help="validate (and sample) at the end on this many")
    parser.add_argument("--n_layer", type=int, default=None, help="blocks of the model (default: the preset's)")
    parser.add_argument("--pipeline", type=int, default=1, help="pipeline stages (MeshStrategy; replaces --strategy)")
    parser.add_argument("--pipeline_schedule", default="1f1b", choices=["gpipe", "1f1b"])
    parser.add_argument("--microbatches", type=int, default=None, help="pipeline micro-batches per batch")
    parser.add_argument("--tensor", type=int, default=1, help="tensor-parallel size within each pipeline stage")
    parser.add_argument("--accumulate", type=int, default=1, help="batches per optimizer step (of the global batch)")
    parser.add_argument("--sequence_parallel", action="store_true", help="MeshStrategy(tensor_parallel_size=--tensor)")
    parser.add_argument("--vocab", type=int, default=300, help="the tokenizer's vocabulary (odd: uneven slices)")
    args = parser.parse_args(argv)
    register_strategies()
    strategy = args.strategy
    if args.pipeline > 1:
        strategy = MeshStrategy(
            pipeline_parallel_size=args.pipeline,
            tensor_parallel_size=args.tensor,
            pipeline_schedule=args.pipeline_schedule,
            pipeline_microbatches=args.microbatches,
            sequence_parallel=args.sequence_parallel,
        )
    elif args.sequence_parallel:
        strategy = MeshStrategy(tensor_parallel_size=args.tensor, sequence_parallel=True)
    overrides = {"qk_norm": True} if args.qk_norm else {}
    if args.n_layer is not None:
        overrides["n_layer"] = args.n_layer
    L.seed_everything(7)
    global_batch = 8
    dm = LLMDataModule(
        vocab_size=args.vocab,
        block_size=32,
        batch_size=global_batch // (args.replicas * args.accumulate),
        shuffle=False,
        cache_dir=args.cache,
    )
    module = PretrainModule(
        arch=args.arch,
        arch_overrides=overrides or None,
        learning_rate=3e-3,
        warmup_steps=2,
        max_steps=args.schedule,
        weight_decay=0.1,
        activation_checkpointing=args.activation_checkpointing,
    )
    record = RecordLosses()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy=strategy,
        precision=args.precision,
        max_steps=args.steps,
        accumulate_grad_batches=args.accumulate,
        gradient_clip_val=1.0,
        limit_val_batches=args.val_batches * args.accumulate,  # the same samples, in smaller batches
        val_check_interval=args.steps * args.accumulate,  # counted in batches
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        logger=False,
        default_root_dir=args.root,
        callbacks=[record, L.pytorch.callbacks.ModelCheckpoint(dirpath=f"{args.root}/checkpoints", save_last=True)],
    )
    trainer.fit(module, datamodule=dm, ckpt_path=args.ckpt_path)
    if trainer.is_global_zero:
        val = trainer.callback_metrics.get("val/loss")
        result = {"losses": record.losses, "grad_norms": record.grad_norms, "global_step": trainer.global_step}
        result["val_loss"] = val and float(val)
        Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
