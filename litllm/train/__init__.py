"""Training on Lightning: one shared LightningModule base, one subclass per stage, the callbacks a person
watches a run through, and the sharding helpers."""

from litllm.train.base import LLMModule
from litllm.train.dpo import DPOModule
from litllm.train.pretrain import PretrainModule, SFTModule

__all__ = ["DPOModule", "LLMModule", "PretrainModule", "SFTModule"]
