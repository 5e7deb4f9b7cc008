"""``run.json``: what a run was, for its report card (``litllm report``), written when fitting starts.

The device, the number of processes, the precision, the parameter counts (all and trainable), the
training and validation data (samples, tokens per sample, layout, the unigram baseline) and the step
settings: facts a person otherwise digs out of logs. Written by rank 0 under ``trainer.default_root_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from litllm.report.facts import cpu_name


def _dataset_facts(dataset: Any, layout: str, block_size: int) -> dict[str, Any]:
    try:
        samples = len(dataset)
    except TypeError:  # streamed: no length
        return {"samples": None}
    facts: dict[str, Any] = {"samples": samples}
    if layout == "blocks":
        facts["tokens"] = samples * block_size
    return facts


def device_name(device: torch.device) -> str:
    """``cuda: NVIDIA H100 80GB HBM3`` on a GPU, the processor's name on a CPU."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {cpu_name()}"


class RunFacts(Callback):
    """Write ``<default_root_dir>/run.json`` at the start of fitting (see the module docstring)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        params = list(pl_module.parameters())
        total, trainable = sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)
        if getattr(pl_module, "pipeline", None) is not None:
            # This process holds one stage: count the whole model (under a pipeline every weight trains).
            from litllm.model.gpt import GPT

            with torch.device("meta"):
                total = trainable = GPT(pl_module.config).num_parameters()
        facts: dict[str, Any] = {
            "module": type(pl_module).__name__,
            "device": device_name(pl_module.device),
            "accelerator": pl_module.device.type,
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
            "parameters": total,
            "trainable_parameters": trainable,
            "max_steps": trainer.max_steps,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
        }
        datamodule = trainer.datamodule
        contract = getattr(datamodule, "_contract", None)
        if contract is not None:
            layout, block = contract.layout, contract.block_size
            facts["data"] = {
                "layout": layout,
                "block_size": block,
                "batch_size": getattr(datamodule, "batch_size", None),
                "vocab_size": contract.tokenizer.vocab_size,
                "train": _dataset_facts(datamodule.train_dataset, layout, block),
                "val": _dataset_facts(datamodule.val_dataset, layout, block),
                "unigram_loss": contract.unigram_loss,
                "val_bytes_per_token": contract.val_bytes_per_token,
            }
        root = Path(trainer.default_root_dir)
        root.mkdir(parents=True, exist_ok=True)
        (root / "run.json").write_text(json.dumps(facts, indent=2, default=str) + "\n")
