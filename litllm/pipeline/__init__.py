"""``litllm run``: a pipeline of ordinary ``litllm`` stages (tokenizer, prepare, pretrain, SFT, DPO, evaluate)
under one output root, wired together, skipped when done, resumed when interrupted, with a report card."""

from litllm.pipeline.spec import Pipeline, Stage, load_pipeline

__all__ = ["Pipeline", "Stage", "load_pipeline"]
