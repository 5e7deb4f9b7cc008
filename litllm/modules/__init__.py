"""LightningModules: one shared base, one subclass per training stage."""

from litllm.modules.base import LLMModule
from litllm.modules.pretrain import PretrainModule, SFTModule

__all__ = ["LLMModule", "PretrainModule", "SFTModule"]
