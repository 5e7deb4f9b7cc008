"""GPT-2 (``GPT2LMHeadModel``; ``GPT2Model`` checkpoints such as the original ``gpt2`` also import).

Weight facts the mapping relies on: GPT-2 stores its linear layers as ``Conv1D``, whose weights are
(in, out), the transpose of ``nn.Linear``; queries, keys and values are one fused ``c_attn`` in that
order, as in our ``qkv``. ``GPT2LMHeadModel`` prefixes the backbone's tensors with ``transformer.``.
"""

from __future__ import annotations

from typing import Any

from litllm.interop.convert.family import Family, Tensor, expect, params, register, reject_quantized, unsupported
from litllm.model.config import ModelConfig

_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")


@register
class GPT2(Family):
    """Learned positions, LayerNorm, a tanh-GELU MLP and biases everywhere."""

    model_type = "gpt2"
    architecture = "GPT2LMHeadModel"
    export_rank = 1  # learned positions are GPT-2's alone
    hf_prefix = "transformer."
    hf_layer = "h.{}."
    buffers = ("*.attn.bias", "*.attn.masked_bias")  # causal-mask buffers of old checkpoints, not weights

    def config_from_hf(self, hf: dict[str, Any], where: str) -> ModelConfig:
        act = hf.get("activation_function", "gelu_new")
        if act not in _TANH_GELUS:
            raise unsupported(where, "activation_function", act, f"the backbone's GELU is the tanh one ({_TANH_GELUS})")
        for field, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False)):
            if hf.get(field, ok) != ok:
                raise unsupported(where, field, hf[field], "attention is scaled by 1/sqrt(head_dim) only")
        if hf.get("add_cross_attention"):
            raise unsupported(where, "add_cross_attention", True, "the backbone is decoder-only")
        reject_quantized(hf, where)
        return ModelConfig(
            name=hf.get("_name_or_path") or "gpt2-hf",
            vocab_size=hf["vocab_size"],
            block_size=hf.get("n_positions", 1024),
            n_layer=hf["n_layer"],
            n_head=hf["n_head"],
            n_embd=hf["n_embd"],
            intermediate_size=hf.get("n_inner") or 4 * hf["n_embd"],
            position="learned",
            norm="layernorm",
            norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            mlp="gelu",
            bias=True,
            tie_embeddings=hf.get("tie_word_embeddings", True),
        )

    def matches(self, config: ModelConfig) -> bool:
        return config.position == "learned"

    def check_export(self, config: ModelConfig) -> None:
        expected = {"norm": "layernorm", "mlp": "gelu", "bias": True, "attn_bias": True, "sliding_window": None}
        expected.update(n_kv_head=config.n_head, head_dim=config.n_embd // config.n_head)
        expect(config, expected, self.model_type)

    def config_to_hf(self, config: ModelConfig) -> dict[str, Any]:
        return {
            "n_positions": config.block_size,
            "n_embd": config.n_embd,
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_inner": config.intermediate_size,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": config.norm_eps,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "scale_attn_weights": True,
        }

    def top_tensors(self, config: ModelConfig) -> list[Tensor]:
        return params("wte", "wte", False) + params("wpe", "wpe", False) + params("norm", "ln_f", True)

    def layer_tensors(self, config: ModelConfig) -> list[Tensor]:
        rows = params("norm_1", "ln_1", True)
        rows += params("attn.qkv", "attn.c_attn", True, transpose=True)
        rows += params("attn.proj", "attn.c_proj", True, transpose=True)
        rows += params("norm_2", "ln_2", True)
        rows += params("mlp.up", "mlp.c_fc", True, transpose=True)
        rows += params("mlp.down", "mlp.c_proj", True, transpose=True)
        return rows
