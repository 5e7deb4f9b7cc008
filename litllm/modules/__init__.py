"""LightningModules: one shared base, one subclass per training stage."""

from litllm.modules.base import LLMModule
from litllm.modules.pretrain import PretrainModule

__all__ = ["LLMModule", "PretrainModule"]
