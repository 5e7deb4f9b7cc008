"""Data for every stage: sources, tokenization caches and the ``LLMDataModule``."""

from litllm.data.module import LLMDataModule

__all__ = ["LLMDataModule"]
