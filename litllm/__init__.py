"""litllm: from raw text to a chat model you trained yourself, on PyTorch Lightning."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from litllm import _moved

__version__ = "0.1.0"
__all__ = ["GPT", "PRESETS", "ModelConfig", "Tokenizer", "train_bpe", "__version__"]

# Imported on first use, so that light entry points (``litllm prepare`` and its worker processes,
# ``litllm chat``) do not pay for importing torch before they need it.
_LAZY = {
    "GPT": "litllm.model.gpt",
    "PRESETS": "litllm.model.config",
    "ModelConfig": "litllm.model.config",
    "Tokenizer": "litllm.model.tokenizer",
    "train_bpe": "litllm.model.tokenizer",
}

_moved.install()  # litllm 0.1 module paths (in old recipes and checkpoints) still import

if TYPE_CHECKING:
    from litllm.model.config import PRESETS, ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.tokenizer import Tokenizer, train_bpe


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'litllm' has no attribute {name!r}")
