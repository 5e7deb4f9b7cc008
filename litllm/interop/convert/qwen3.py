"""Qwen3 (``Qwen3ForCausalLM``): Qwen2's window handling with QK-norm and Llama's bias rule.

QK-norm is a per-head RMSNorm of queries and keys before the rotation: one ``q_norm`` and one
``k_norm`` weight of ``head_dim`` per layer. Qwen3's default ``head_dim`` of 128 need not be
``hidden_size / heads``, which ``config.json`` then states.
"""

from __future__ import annotations

from typing import Any

from litllm.interop.convert.family import Tensor, expect, params, register, unsupported
from litllm.interop.convert.llama import Llama
from litllm.interop.convert.qwen2 import Qwen2
from litllm.model.config import ModelConfig


@register
class Qwen3(Qwen2):
    """Qwen2 without its q/k/v biases, plus QK-norm."""

    model_type = "qwen3"
    architecture = "Qwen3ForCausalLM"
    export_rank = 0  # QK-norm is Qwen3's alone, whatever else the config says
    qk_norm = True

    def biases(self, hf: dict[str, Any], where: str) -> tuple[bool, bool]:
        if hf.get("attention_bias"):
            raise unsupported(where, "attention_bias", True, "Qwen3 with q/k/v biases is not expressible with QK-norm")
        return Llama.biases(self, hf, where)  # Llama's all-or-none rule, not Qwen2's q/k/v-only biases

    def matches(self, config: ModelConfig) -> bool:
        return config.qk_norm

    def check_export(self, config: ModelConfig) -> None:
        expected = {"position": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "attn_bias": False}
        expect(config, {**expected, "sliding_window": None}, self.model_type)

    def family_fields(self, config: ModelConfig) -> dict[str, Any]:
        return {**super().family_fields(config), "attention_bias": False}

    def layer_tensors(self, config: ModelConfig) -> list[Tensor]:
        norms = params("attn.q_norm", "self_attn.q_norm", False) + params("attn.k_norm", "self_attn.k_norm", False)
        return super().layer_tensors(config) + norms
