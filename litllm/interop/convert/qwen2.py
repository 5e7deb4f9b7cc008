"""Qwen2 (``Qwen2ForCausalLM``): Llama with biases on q/k/v only.

Its sliding window is optional and per layer (``use_sliding_window``, ``max_window_layers``,
``layer_types``); the backbone has one window for all layers, so only that case imports.
"""

from __future__ import annotations

from typing import Any

from litllm.interop.convert.family import expect, register, unsupported
from litllm.interop.convert.llama import Llama
from litllm.model.config import ModelConfig


@register
class Qwen2(Llama):
    """Llama's weights plus q/k/v biases; exported without a window or Llama-3.1 rotary scaling."""

    model_type = "qwen2"
    architecture = "Qwen2ForCausalLM"
    export_rank = 2  # q/k/v-only biases are Qwen2's alone
    exports_rope_scaling = False

    def biases(self, hf: dict[str, Any], where: str) -> tuple[bool, bool]:
        return False, True  # biases on q/k/v, nowhere else, whatever the config says

    def window(self, hf: dict[str, Any], where: str) -> int | None:
        if not hf.get("use_sliding_window"):
            return None
        layer_types = hf.get("layer_types") or []
        if (
            any(t != "sliding_attention" for t in layer_types)
            or hf.get("max_window_layers", 0) < hf["num_hidden_layers"]
        ):
            raise unsupported(
                where, "layer_types", layer_types, "the backbone uses one attention window for all layers"
            )
        return hf.get("sliding_window")

    def matches(self, config: ModelConfig) -> bool:
        return super().matches(config) and config.attn_bias and not config.bias

    def check_export(self, config: ModelConfig) -> None:
        super().check_export(config)
        expect(config, {"sliding_window": None}, self.model_type)

    def family_fields(self, config: ModelConfig) -> dict[str, Any]:
        return {"use_sliding_window": False, "sliding_window": None}
