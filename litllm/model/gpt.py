"""The one transformer backbone.

    tokens -> token embedding (+ learned positions) -> n_layer x Block -> final norm -> head -> logits
    Block:  x = x + attn(norm_1(x));  x = x + mlp(norm_2(x))          (pre-norm residual stream)

GPT-2 and Llama-3/Mistral-style models are the same code with different ``ModelConfig`` flags.
Attention goes through ``F.scaled_dot_product_attention`` so PyTorch picks the fastest kernel
(flash on GPU and CPU) for us.

For generation, ``forward(idx, cache=KVCache(...))`` runs incrementally: the keys and values of
earlier tokens are kept per layer, so each step only computes the new token(s). Training calls
``forward(idx)`` and never touches the cache code.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from litllm.model.config import ModelConfig
from litllm.model.kv_cache import KVCache, LayerCache


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        # Learned absolute positions only for GPT-2 style; rotary positions live inside attention.
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = make_norm(config, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        if config.position == "rope":
            # Not saved in checkpoints (persistent=False): they are a pure function of the config.
            self.register_buffer("rope_cos", torch.empty(0), persistent=False)
            self.register_buffer("rope_sin", torch.empty(0), persistent=False)
        self.reset_parameters()

    # ------------------------------------------------------------------ init
    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) everywhere, residual output projections scaled by 1/sqrt(2*n_layer).

        Each block adds two residual branches to the stream, so without the scaling the variance of
        the residual stream would grow with depth. ``zero_init_output_proj`` zeroes those projections
        instead (the random stream is drawn all the same, so every other weight is the default's).
        """
        std, zero_outputs = 0.02, self.config.zero_init_output_proj
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                output = name.endswith(("attn.proj", "mlp.down"))
                scale = (0.0 if zero_outputs else 1 / math.sqrt(2 * self.config.n_layer)) if output else 1.0
                nn.init.normal_(module.weight, mean=0.0, std=std * scale)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
                module.reset_parameters()
        self.init_rope()

    def init_rope(self) -> None:
        """(Re)compute the rotary tables, e.g. after the model was created on the meta device."""
        if self.config.position != "rope":
            return
        cos, sin = rope_tables(self.config, device=self.wte.weight.device)
        self.rope_cos, self.rope_sin = cos, sin

    # ------------------------------------------------------------------ forward
    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Map token ids ``(B, T)`` to next-token logits ``(B, T, vocab_size)``.

        With a ``cache``, ``idx`` holds the tokens that follow the ones already in the cache (the
        whole prompt at the first call, then one token per step); their keys and values are added
        to the cache and its position advances by ``T``.
        """
        _, t = idx.shape
        start = 0 if cache is None else cache.pos
        if start + t > self.config.block_size:
            raise ValueError(f"sequence length {start + t} exceeds the model's block_size {self.config.block_size}")
        x = embed(self, idx, start)
        rope = rope_at(self, start, t)
        if cache is None:
            for block in self.blocks:
                x = block(x, rope)
        else:
            for i, block in enumerate(self.blocks):
                x = block(x, rope, cache.layer(i))
            cache.pos += t
        return output_logits(self, x)

    def make_cache(self, max_len: int | None = None) -> KVCache:
        """An empty key/value cache for up to ``max_len`` positions (default: the block size)."""
        return KVCache(self.config, max_len or self.config.block_size)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Unique parameters (a tied head counts once); optionally without the embedding tables."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.wte.weight.numel() + (self.wpe.weight.numel() if self.wpe is not None else 0)
        return n


# The two ends of the backbone, as functions of any module holding the same attributes: ``GPT`` and a
# pipeline stage (``litllm.parallel.pipeline.PipelineStageModule``, which holds the first or the last
# part of a GPT under the same names) then compute them with the same operations, so a pipeline trains
# the same numbers as one process.


def embed(model: nn.Module, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Token embeddings (+ learned positions from ``start``) with embedding dropout: ``model.wte``, ``.wpe``, ``.drop``."""
    x = model.wte(idx)
    if model.wpe is not None:
        x = x + model.wpe(torch.arange(start, start + idx.size(1), device=idx.device))
    return model.drop(x)


def rope_at(model: nn.Module, start: int, t: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The rotary tables of positions ``[start, start + t)`` (``model.rope_cos``, ``.rope_sin``), or None."""
    if model.config.position != "rope":
        return None
    return model.rope_cos[start : start + t], model.rope_sin[start : start + t]


def output_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Final norm, head and the optional logit soft-cap: ``model.norm``, ``.lm_head``, ``.config.logit_softcap``."""
    logits = model.lm_head(model.norm(x))
    cap = model.config.logit_softcap
    return logits if cap is None else cap * torch.tanh(logits / cap)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm_1 = make_norm(config, config.n_embd)
        self.attn = Attention(config)
        self.norm_2 = make_norm(config, config.n_embd)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: LayerCache | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x), rope, cache)
        return x + self.mlp(self.norm_2(x))


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        # One fused projection for queries, keys and values: one big matmul instead of three.
        # With grouped-query attention there are fewer key/value heads than query heads.
        qkv_out = (config.n_head + 2 * config.n_kv_head) * config.head_dim
        self.qkv = nn.Linear(config.n_embd, qkv_out, bias=config.attn_bias)
        self.proj = nn.Linear(config.n_head * config.head_dim, config.n_embd, bias=config.bias)
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(config.head_dim, eps=config.norm_eps)
            self.k_norm = nn.RMSNorm(config.head_dim, eps=config.norm_eps)
        self.qk_norm = config.qk_norm
        self.sliding_window = config.sliding_window
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: LayerCache | None = None
    ) -> torch.Tensor:
        qkv = self.qkv(x)
        b, t, _ = qkv.shape  # (under sequence parallelism x holds a part of the sequence, qkv all of it)
        # Head counts from the width: under tensor parallelism (litllm.parallel) a process holds only its heads.
        n_kv_head = qkv.size(-1) // self.head_dim // (self.n_head // self.n_kv_head + 2)
        n_head = n_kv_head * (self.n_head // self.n_kv_head)
        q, k, v = qkv.split([n_head * self.head_dim, n_kv_head * self.head_dim, n_kv_head * self.head_dim], dim=-1)
        # (B, T, heads * head_dim) -> (B, heads, T, head_dim), the layout SDPA expects
        q = q.view(b, t, n_head, self.head_dim).transpose(1, 2)
        k = k.view(b, t, n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(b, t, n_kv_head, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            return self._forward_cached(q, k, v, cache)
        mask = None
        if self.sliding_window is not None and t > self.sliding_window:
            mask = sliding_window_mask(t, self.sliding_window, x.device)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None,
            enable_gqa=n_kv_head != n_head,
        )
        y = y.transpose(1, 2).reshape(b, t, n_head * self.head_dim)
        return self.resid_drop(self.proj(y))

    def _forward_cached(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: LayerCache) -> torch.Tensor:
        """Attention of the new queries over the cached keys/values plus the new ones."""
        b, _, t, _ = q.shape
        start = cache.pos
        # (B, n_kv_head, n, head_dim): only the KV heads are kept; key j sits at position first + j.
        keys, values, first = cache.update(k, v)
        mask = None
        if t > 1:
            # Query i sits at position start + i. (One new query sees every key it is given: the cache
            # returns no key outside its window.)
            qpos = torch.arange(start, start + t, device=q.device)[:, None]
            kpos = torch.arange(first, first + keys.size(2), device=q.device)[None, :]
            mask = kpos <= qpos
            if self.sliding_window is not None:
                mask = mask & (kpos > qpos - self.sliding_window)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=keys.size(1) != q.size(1))
        y = y.transpose(1, 2).reshape(b, t, q.size(1) * self.head_dim)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.swiglu, self.relu2 = config.mlp == "swiglu", config.mlp == "relu2"
        if self.swiglu:
            self.gate = nn.Linear(config.n_embd, config.intermediate_size, bias=config.bias)
        self.up = nn.Linear(config.n_embd, config.intermediate_size, bias=config.bias)
        self.down = nn.Linear(config.intermediate_size, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            h = F.silu(self.gate(x)) * self.up(x)
        elif self.relu2:
            h = F.relu(self.up(x)).square()
        else:
            h = F.gelu(self.up(x), approximate="tanh")  # GPT-2 used the tanh approximation
        return self.drop(self.down(h))


def make_norm(config: ModelConfig, dim: int) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.bias)


def rope_tables(config: ModelConfig, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (block_size, head_dim) for rotary embeddings, in float32.

    Uses the "rotate half" layout (pairs are (i, i + head_dim/2)), the convention of Hugging Face
    Llama checkpoints, so their weights load without permutation.
    """
    inv_freq = 1.0 / (
        config.rope_theta ** (torch.arange(0, config.head_dim, 2, device=device).float() / config.head_dim)
    )
    if config.rope_scaling is not None:
        inv_freq = llama3_scaled_frequencies(inv_freq, **config.rope_scaling)
    positions = torch.arange(config.block_size, device=device).float()
    angles = torch.outer(positions, inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def llama3_scaled_frequencies(
    inv_freq: torch.Tensor,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: float,
) -> torch.Tensor:
    """Llama 3.1's context extension: slow rotations (long wavelengths) are slowed ``factor`` times
    more, fast ones are kept, and the band in between is interpolated, so that nearby positions
    stay sharp while far ones fit the longer context the model was extended to."""
    wavelength = 2 * math.pi / inv_freq
    long_limit = original_max_position_embeddings / low_freq_factor  # longer wavelengths: divide by factor
    short_limit = original_max_position_embeddings / high_freq_factor  # shorter ones: unchanged
    mix = (original_max_position_embeddings / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    between = (1 - mix) * inv_freq / factor + mix * inv_freq
    scaled = torch.where(wavelength > long_limit, inv_freq / factor, between)
    return torch.where(wavelength < short_limit, inv_freq, scaled)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` of shape (B, heads, T, head_dim) by position-dependent angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


def sliding_window_mask(t: int, window: int, device: torch.device) -> torch.Tensor:
    """Boolean (T, T) mask: position i sees j when i - window < j <= i."""
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(t, device=device)[None, :]
    return (j <= i) & (j > i - window)
