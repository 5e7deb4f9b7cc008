"""Mistral (``MistralForCausalLM``): Llama with one sliding attention window for all layers."""

from __future__ import annotations

from typing import Any

from litllm.interop.convert.family import expect, register
from litllm.interop.convert.llama import Llama
from litllm.model.config import ModelConfig


@register
class Mistral(Llama):
    """Llama's weights and fields, plus ``sliding_window``; no biases, no Llama-3.1 rotary scaling."""

    model_type = "mistral"
    architecture = "MistralForCausalLM"
    export_rank = 3  # a sliding window, after Qwen2's q/k/v-only biases claimed theirs
    exports_rope_scaling = False

    def window(self, hf: dict[str, Any], where: str) -> int | None:
        return hf.get("sliding_window")

    def matches(self, config: ModelConfig) -> bool:
        return super().matches(config) and config.sliding_window is not None

    def check_export(self, config: ModelConfig) -> None:
        super().check_export(config)
        expect(config, {"bias": False}, self.model_type)

    def family_fields(self, config: ModelConfig) -> dict[str, Any]:
        return {"sliding_window": config.sliding_window}
