"""LightningModules: one shared base, one subclass per training stage."""

from litllm.modules.base import LLMModule
from litllm.modules.dpo import DPOModule
from litllm.modules.pretrain import PretrainModule, SFTModule

__all__ = ["DPOModule", "LLMModule", "PretrainModule", "SFTModule"]
