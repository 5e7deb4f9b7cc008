"""What litllm adds to a Lightning checkpoint, and the checks that a checkpoint fits the run resuming from it.

A checkpoint carries, under ``"litllm"``, the model config and the exact tokenizer, so that it can be
read without the run's data; a run that resumes from it must use the same tokenizer and model shape.
"""

from __future__ import annotations

from typing import Any

import torch

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.model.tokenizer import Tokenizer


def describe_run(checkpoint: dict[str, Any], config: ModelConfig, tokenizer: Tokenizer | None) -> None:
    """Make a checkpoint self-describing: the model shape and the exact tokenizer."""
    checkpoint["litllm"] = {
        "model_config": config.to_dict(),
        "tokenizer": tokenizer.backend.to_str() if tokenizer is not None else None,
    }


def check_fits(checkpoint: dict[str, Any], tokenizer: Tokenizer | None, own: dict[str, torch.Tensor] | None) -> None:
    """Refuse a checkpoint of another tokenizer, or (``own``: the model's state dict) of another model shape."""
    saved = checkpoint.get("litllm", {})
    saved_tokenizer = saved.get("tokenizer")
    if tokenizer is not None and saved_tokenizer and saved_tokenizer != tokenizer.backend.to_str():
        raise CheckpointError(
            "the checkpoint was trained with a different tokenizer than the one this run uses "
            f"(run: {tokenizer.fingerprint()}); point data.tokenizer at the checkpoint's tokenizer"
        )
    for name, tensor in checkpoint.get("state_dict", {}).items() if own is not None else ():
        if name in own and tuple(own[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint tensor {name!r} has shape {tuple(tensor.shape)} but this model has "
                f"{tuple(own[name].shape)}: the checkpoint is from another model shape "
                f"(checkpoint config: {saved.get('model_config')})"
            )
