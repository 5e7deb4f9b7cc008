"""A short pretraining run for the multi-process tests, launched as its own process (never inside pytest).

    python distributed_run.py OUT.json --strategy single|ddp|fsdp [--devices N] [--num_nodes N] [--ckpt_path P]
        [--optimizer adamw|muon]

Rank 0 writes the per-step training losses and a digest of the final weights to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.strategies import ModelParallelStrategy

from litllm.data import LLMDataModule
from litllm.train import PretrainModule
from litllm.train.distributed import full_state_dict


class RecordLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # as logged: the global batch's loss, however many processes share it (litllm.train.distributed.global_mean)
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--strategy", default="single")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--num_nodes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--global_batch", type=int, default=8)
    parser.add_argument("--root", default=None)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--ckpt_path", default=None)
    parser.add_argument("--arch", default="tiny-gpt2")
    parser.add_argument("--optimizer", default="adamw")
    args = parser.parse_args()
    world = args.devices * args.num_nodes
    L.seed_everything(7)
    dm = LLMDataModule(
        vocab_size=300, block_size=32, batch_size=args.global_batch // world, shuffle=False, cache_dir=args.cache
    )
    module = PretrainModule(
        arch=args.arch, learning_rate=3e-3, warmup_steps=1, max_steps=args.steps, optimizer=args.optimizer
    )
    strategy = {"single": "auto", "ddp": "ddp", "fsdp": ModelParallelStrategy()}[args.strategy]
    record = RecordLosses()
    root = args.root or str(Path(args.out).parent / f"run-{args.strategy}")
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=strategy,
        max_steps=args.steps,
        limit_val_batches=2,
        val_check_interval=args.steps,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        logger=False,
        default_root_dir=root,
        callbacks=[
            record,
            L.pytorch.callbacks.ModelCheckpoint(dirpath=f"{root}/checkpoints", save_last=True),
        ],
    )
    trainer.fit(module, datamodule=dm, ckpt_path=args.ckpt_path)
    state = full_state_dict(module.backbone)
    if trainer.is_global_zero:
        digest = {k: float(v.double().sum()) for k, v in state.items()}
        Path(args.out).write_text(
            json.dumps({"losses": record.losses, "weights": digest, "global_step": trainer.global_step})
        )


if __name__ == "__main__":
    main()
