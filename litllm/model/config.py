"""The model configuration: one dataclass that describes every architecture litllm can build.

GPT-2 and Llama-3/Mistral-style models differ only in the flags below (positions, norm, MLP,
attention heads, biases, head tying). Named presets live in ``PRESETS``; ``ModelConfig.from_name``
turns a preset name plus overrides into a config, and rejects unknown keys by name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from litllm.errors import ConfigError

ROPE_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
"""The fields of Llama-3.1's rotary frequency scaling (``ModelConfig.rope_scaling``)."""


@dataclass
class ModelConfig:
    """Shape and flavour of the transformer backbone."""

    name: str = "custom"
    """Preset name this config came from (informational)."""
    vocab_size: int = 50257
    """Number of token embeddings; at least the tokenizer's vocabulary size."""
    block_size: int = 1024
    """Longest sequence the model attends over (its context length)."""
    n_layer: int = 12
    """Number of transformer blocks."""
    n_head: int = 12
    """Number of query heads."""
    n_kv_head: int | None = None
    """Number of key/value heads (grouped-query attention); None means equal to ``n_head`` (MHA)."""
    n_embd: int = 768
    """Width of the residual stream."""
    head_dim: int | None = None
    """Width of one attention head; None means ``n_embd // n_head``."""
    intermediate_size: int | None = None
    """Hidden width of the MLP; None means ``4 * n_embd``."""
    position: Literal["learned", "rope"] = "learned"
    """Position information: learned absolute embeddings (GPT-2) or rotary embeddings (Llama)."""
    rope_theta: float = 10000.0
    """Base of the rotary frequencies (Llama-3 uses 500000)."""
    rope_scaling: dict[str, float] | None = None
    """Llama-3.1-style context extension of the rotary frequencies: ``factor``, ``low_freq_factor``,
    ``high_freq_factor`` and ``original_max_position_embeddings``. None is plain rotary positions."""
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    """Normalisation layer used before attention, before the MLP and before the head."""
    norm_eps: float = 1e-5
    """Epsilon of the normalisation layers."""
    mlp: Literal["gelu", "swiglu", "relu2"] = "gelu"
    """MLP flavour: GELU (tanh approximation, as GPT-2), SwiGLU (gated SiLU, as Llama) or ``relu2``, ReLU
    squared (So et al. 2021, "Primer"; as in modded-nanogpt): ungated, GELU's shape and parameter count."""
    bias: bool = True
    """Biases in the linear layers and LayerNorms (GPT-2: yes, Llama: no)."""
    attn_bias: bool | None = None
    """Biases on the query/key/value projection only (Qwen2 style); None follows ``bias``."""
    qk_norm: bool = False
    """RMS-normalise queries and keys per head before attention (OLMo-2/Qwen3 style)."""
    sliding_window: int | None = None
    """Attend only to the last ``sliding_window`` positions (Mistral style); None is full causal attention."""
    tie_embeddings: bool = True
    """Share the token embedding matrix with the output head (False: an untied head of its own)."""
    zero_init_output_proj: bool = False
    """Initialise the attention output projection and the MLP down projection to zero, so that every
    block starts as the identity on the residual stream (modded-nanogpt); False: GPT-2's scaled normal."""
    logit_softcap: float | None = None
    """Soft-cap the head's logits to (-cap, cap) with ``cap * tanh(logits / cap)`` (Gemma 2, modded-nanogpt);
    None leaves them as they are. No Hugging Face family here computes it, so such a model does not export."""
    dropout: float = 0.0
    """Dropout on attention weights and residual branches during training."""

    def __post_init__(self) -> None:
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.head_dim is None:
            if self.n_embd % self.n_head:
                raise ConfigError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
            self.head_dim = self.n_embd // self.n_head
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.n_embd
        if self.attn_bias is None:
            self.attn_bias = self.bias
        if self.n_head % self.n_kv_head:
            raise ConfigError(f"n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head}")
        if self.position == "rope" and self.head_dim % 2:
            raise ConfigError(f"rotary positions need an even head_dim, got {self.head_dim}")
        if self.logit_softcap is not None and not self.logit_softcap > 0:
            raise ConfigError(f"logit_softcap must be positive (or None), got {self.logit_softcap}")
        if self.rope_scaling is not None:
            missing = set(ROPE_SCALING_KEYS) - set(self.rope_scaling)
            if missing:
                raise ConfigError(f"rope_scaling lacks {sorted(missing)} (needs {list(ROPE_SCALING_KEYS)})")
            self.rope_scaling = {k: float(self.rope_scaling[k]) for k in ROPE_SCALING_KEYS}

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        """Build the preset ``name`` with some fields replaced; unknown names or keys raise ``ValueError``."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
        fields = {**PRESETS[name], "name": name}
        fields.update(_checked(overrides, f"overrides of preset {name!r}"))
        return cls(**fields)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**_checked(data, "model config"))

    @classmethod
    def from_json(cls, path: str | Path) -> ModelConfig:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        try:
            return cls(**_checked(data, str(path)))
        except TypeError as err:  # wrong value types
            raise ConfigError(f"{path}: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    # ----------------------------------------------------------------- derived numbers
    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward = 3x forward) from the shape, PaLM-style.

        6 * (non-embedding parameters + head) plus the attention score/value products.
        """
        t = seq_len or self.block_size
        if self.sliding_window:
            t = min(t, self.sliding_window)
        d, h = self.n_embd, self.head_dim
        attn = d * (self.n_head + 2 * self.n_kv_head) * h + self.n_head * h * d
        mlp = (3 if self.mlp == "swiglu" else 2) * d * self.intermediate_size
        matmul_params = self.n_layer * (attn + mlp) + d * self.vocab_size
        # attention: QK^T and AV, 2 FLOPs per multiply-add, causal halves the work on average
        attn_flops = self.n_layer * 2 * 2 * self.n_head * h * t / 2
        return 6 * matmul_params + 3 * attn_flops


def resolve_config(arch: str, overrides: dict[str, Any] | None = None, base: ModelConfig | None = None) -> ModelConfig:
    """A run's model config: ``base`` (a starting model's) if given, else ``arch`` (a model directory, a
    config.json or a preset name), with ``overrides`` replacing some fields."""
    overrides = dict(overrides or {})
    if base is None and Path(arch).is_dir():
        from litllm.model.model_dir import ModelDir

        base = ModelDir(arch).config()
    elif base is None and arch.endswith(".json"):
        base = ModelConfig.from_json(arch)
    if base is None:
        return ModelConfig.from_name(arch, **overrides)
    return ModelConfig.from_dict({**base.to_dict(), **overrides})


def _checked(data: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown model config key(s) {unknown}; valid keys are {sorted(known)}")
    return dict(data)


_GPT2 = dict(position="learned", norm="layernorm", mlp="gelu", bias=True, tie_embeddings=True, vocab_size=50257)
_LLAMA = dict(position="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_embeddings=False, norm_eps=1e-5)

_TINY_LLAMA = dict(
    _LLAMA, vocab_size=512, block_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=64, intermediate_size=128
)

PRESETS: dict[str, dict[str, Any]] = {
    # GPT-2 family (Radford et al. 2019), vocab 50257, context 1024
    "gpt2-124m": dict(_GPT2, block_size=1024, n_layer=12, n_head=12, n_embd=768),
    "gpt2-350m": dict(_GPT2, block_size=1024, n_layer=24, n_head=16, n_embd=1024),
    "gpt2-774m": dict(_GPT2, block_size=1024, n_layer=36, n_head=20, n_embd=1280),
    "gpt2-1.5b": dict(_GPT2, block_size=1024, n_layer=48, n_head=25, n_embd=1600),
    # Llama-3 style small models: RoPE (theta 500k), RMSNorm, SwiGLU, GQA, no biases, untied head
    "llama-125m": dict(
        _LLAMA,
        vocab_size=32000,
        block_size=2048,
        n_layer=12,
        n_head=12,
        n_kv_head=4,
        n_embd=768,
        intermediate_size=2048,
        rope_theta=500000.0,
    ),
    "llama-350m": dict(
        _LLAMA,
        vocab_size=32000,
        block_size=2048,
        n_layer=24,
        n_head=16,
        n_kv_head=4,
        n_embd=1024,
        intermediate_size=2816,
        rope_theta=500000.0,
    ),
    # Meta's Llama 3 shapes (for memory planning and the 3-D parallel recipe; weights via `litllm convert`)
    "llama3.2-1b": dict(
        _LLAMA,
        vocab_size=128256,
        block_size=8192,
        n_layer=16,
        n_head=32,
        n_kv_head=8,
        n_embd=2048,
        intermediate_size=8192,
        rope_theta=500000.0,
        tie_embeddings=True,
    ),
    "llama3-8b": dict(
        _LLAMA,
        vocab_size=128256,
        block_size=8192,
        n_layer=32,
        n_head=32,
        n_kv_head=8,
        n_embd=4096,
        intermediate_size=14336,
        rope_theta=500000.0,
    ),
    # Mistral style: like Llama plus a sliding attention window
    "mistral-125m": dict(
        _LLAMA,
        vocab_size=32000,
        block_size=4096,
        n_layer=12,
        n_head=12,
        n_kv_head=4,
        n_embd=768,
        intermediate_size=2048,
        sliding_window=1024,
    ),
    # CPU-sized models
    "gpt-10m": dict(_GPT2, vocab_size=8192, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.0),
    "llama-10m": dict(
        _LLAMA,
        vocab_size=8192,
        block_size=256,
        n_layer=6,
        n_head=6,
        n_kv_head=2,
        n_embd=384,
        intermediate_size=1024,
    ),
    # tiny shapes for tests and smoke runs
    "tiny-gpt2": dict(_GPT2, vocab_size=512, block_size=64, n_layer=2, n_head=4, n_embd=64),
    "tiny-llama": _TINY_LLAMA,
    "tiny-mistral": dict(_TINY_LLAMA, sliding_window=16),
}
