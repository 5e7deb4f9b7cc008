"""Data for every stage: sources, tokenization caches and the ``LLMDataModule``."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["LLMDataModule"]

if TYPE_CHECKING:
    from litllm.data.module import LLMDataModule


def __getattr__(name: str):
    # Lazy: the data module imports Lightning, which readers of files and tokenizers do not need.
    if name == "LLMDataModule":
        from litllm.data.module import LLMDataModule

        return LLMDataModule
    raise AttributeError(f"module 'litllm.data' has no attribute {name!r}")
