"""The model: its config and presets, the GPT backbone, the tokenizer, the model directory, adapters.

Nothing here imports Lightning. Names are imported on first use, so that torch-free readers
(``litllm prepare`` workers load only ``litllm.model.tokenizer``) do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["GPT", "PRESETS", "ModelConfig", "Tokenizer"]

_LAZY = {
    "GPT": "litllm.model.gpt",
    "PRESETS": "litllm.model.config",
    "ModelConfig": "litllm.model.config",
    "Tokenizer": "litllm.model.tokenizer",
}

if TYPE_CHECKING:
    from litllm.model.config import PRESETS, ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.tokenizer import Tokenizer


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'litllm.model' has no attribute {name!r}")
