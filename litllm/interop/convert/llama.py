"""Llama (``LlamaForCausalLM``): grouped-query attention, a tied or untied head, Llama-3.1 rotary scaling.

Also the base of the other rotary families (``mistral.py``, ``qwen2.py``, ``qwen3.py``), which override
only what differs: the biases, the sliding window, QK-norm and the fields only they write.

Weight facts the mapping relies on: Llama-family checkpoints already use the "rotate half" rotary
layout of ``litllm.model.gpt.apply_rope``, so q/k projections load without permutation; q, k and v
are separate and are concatenated into our fused ``qkv`` (and split again on export).
"""

from __future__ import annotations

from typing import Any, ClassVar

from litllm.errors import ConfigError
from litllm.interop.convert.family import Family, Tensor, expect, params, register, reject_quantized, unsupported
from litllm.model.config import ROPE_SCALING_KEYS, ModelConfig


@register
class Llama(Family):
    """RMSNorm, a SwiGLU MLP, rotary positions; biases in all linear layers or in none."""

    model_type = "llama"
    architecture = "LlamaForCausalLM"
    export_rank = 9  # the plain rotary model: whatever no more specific family claimed
    hf_layer = "model.layers.{}."
    buffers = ("model.rotary_emb.inv_freq",)
    qk_norm: ClassVar[bool] = False
    """Per-head RMSNorm of queries and keys before the rotation (Qwen3)."""
    exports_rope_scaling: ClassVar[bool] = True
    """Whether this family's HF config can carry Llama-3.1 rotary scaling."""

    def config_from_hf(self, hf: dict[str, Any], where: str) -> ModelConfig:
        act = hf.get("hidden_act", "silu")
        if act != "silu":
            raise unsupported(where, "hidden_act", act, "the backbone's gated MLP is SwiGLU (silu)")
        reject_quantized(hf, where)
        bias, attn_bias = self.biases(hf, where)
        window = self.window(hf, where)
        n_head = hf["num_attention_heads"]
        rope_theta, rope_scaling = _rope(hf, where)
        return ModelConfig(
            name=hf.get("_name_or_path") or f"{self.model_type}-hf",
            vocab_size=hf["vocab_size"],
            block_size=hf.get("max_position_embeddings", 2048),
            n_layer=hf["num_hidden_layers"],
            n_head=n_head,
            n_kv_head=hf.get("num_key_value_heads") or n_head,
            n_embd=hf["hidden_size"],
            head_dim=hf.get("head_dim") or hf["hidden_size"] // n_head,
            intermediate_size=hf["intermediate_size"],
            position="rope",
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            qk_norm=self.qk_norm,
            norm="rmsnorm",
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            mlp="swiglu",
            bias=bias,
            attn_bias=attn_bias,
            sliding_window=window,
            tie_embeddings=hf.get("tie_word_embeddings", False),
        )

    def biases(self, hf: dict[str, Any], where: str) -> tuple[bool, bool]:
        """``(bias, attn_bias)`` of the ``ModelConfig``: Llama has biases in all linear layers or in none."""
        attention_bias, mlp_bias = bool(hf.get("attention_bias", False)), bool(hf.get("mlp_bias", False))
        if attention_bias != mlp_bias:
            field = "attention_bias" if attention_bias else "mlp_bias"
            raise unsupported(where, field, True, "the backbone has biases in all linear layers or in none")
        return attention_bias, attention_bias

    def window(self, hf: dict[str, Any], where: str) -> int | None:
        """The attention window of every layer, or None for full causal attention (Llama's)."""
        return None

    def matches(self, config: ModelConfig) -> bool:
        return config.position == "rope"

    def check_export(self, config: ModelConfig) -> None:
        expect(config, {"norm": "rmsnorm", "mlp": "swiglu"}, "llama")
        if config.bias and not config.attn_bias:
            raise ConfigError(
                "bias=True with attn_bias=False has no HF counterpart (llama: biases everywhere or nowhere)"
            )

    def config_to_hf(self, config: ModelConfig) -> dict[str, Any]:
        hf = {
            "hidden_size": config.n_embd,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.n_layer,
            "num_attention_heads": config.n_head,
            "num_key_value_heads": config.n_kv_head,
            "head_dim": config.head_dim,
            "max_position_embeddings": config.block_size,
            "hidden_act": "silu",
            "rms_norm_eps": config.norm_eps,
            # both spellings: transformers 5 reads rope_parameters, 4 reads rope_theta and rope_scaling
            "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
            "rope_theta": config.rope_theta,
            "attention_dropout": 0.0,
        }
        if config.rope_scaling is not None:
            if not self.exports_rope_scaling:
                raise ConfigError(f"rope_scaling (Llama-3.1 style) has no counterpart in a {self.model_type} export")
            hf["rope_parameters"] = {"rope_type": "llama3", "rope_theta": config.rope_theta, **config.rope_scaling}
            hf["rope_scaling"] = {"rope_type": "llama3", **config.rope_scaling}
        return {**hf, **self.family_fields(config)}

    def family_fields(self, config: ModelConfig) -> dict[str, Any]:
        """The HF config fields that differ between the rotary families, written last."""
        return {"attention_bias": config.bias, "mlp_bias": config.bias}

    def top_tensors(self, config: ModelConfig) -> list[Tensor]:
        return params("wte", "model.embed_tokens", False) + params("norm", "model.norm", False)

    def layer_tensors(self, config: ModelConfig) -> list[Tensor]:
        kv_rows = config.n_kv_head * config.head_dim
        qkv = tuple(f"self_attn.{p}_proj" for p in "qkv")
        rows = params("attn.qkv", qkv, config.attn_bias, sizes=(config.n_head * config.head_dim, kv_rows, kv_rows))
        rows += params("norm_1", "input_layernorm", False) + params("norm_2", "post_attention_layernorm", False)
        linears = (("attn.proj", "self_attn.o_proj"), ("mlp.gate", "mlp.gate_proj"))
        linears += (("mlp.up", "mlp.up_proj"), ("mlp.down", "mlp.down_proj"))
        for ours, hf in linears:
            rows += params(ours, hf, config.bias)
        return rows


def _rope(hf: dict[str, Any], where: str) -> tuple[float, dict[str, float] | None]:
    """The rotary base and Llama-3.1 scaling (or None), from transformers 5's ``rope_parameters`` or 4's
    ``rope_theta``/``rope_scaling``."""
    rope = {**(hf.get("rope_scaling") or {}), **(hf.get("rope_parameters") or {})}
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind not in ("default", "llama3"):
        field = "rope_parameters.rope_type" if hf.get("rope_parameters") else "rope_scaling"
        raise unsupported(where, field, kind, "the backbone has plain rotary positions or Llama-3.1 scaling")
    if rope.get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0)) != 1.0:
        raise unsupported(where, "partial_rotary_factor", hf.get("partial_rotary_factor"), "rotation covers full heads")
    scaling = None
    if kind == "llama3":
        missing = [k for k in ROPE_SCALING_KEYS if k not in rope]
        if missing:
            raise unsupported(where, "rope_scaling", rope, f"llama3 scaling without {missing}")
        scaling = {k: float(rope[k]) for k in ROPE_SCALING_KEYS}
    return float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))), scaling
