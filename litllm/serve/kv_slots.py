"""A key/value cache of fixed slots, one per running sequence, and the forward pass that uses it.

``GPT.forward(idx, cache)`` advances every row of a batch together (one shared position). A server
decodes sequences that started at different times from prompts of different lengths, so here each
slot keeps its own length: ``forward_rows`` runs the rows ``slots`` with new tokens at their own
positions, writes their keys and values into their slots and lets each query see only its own
slot's positions. It reuses the model's modules (embeddings, norms, projections, MLPs, rotary
tables) and only replaces the attention's cache handling, so ``gpt.py`` is unchanged.

Masked (unused) key positions get exactly zero attention weight, and a row's projections and
MLP do not mix rows, so a row's result does not depend on which other rows share the batch, up
to the rounding of batched matrix products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from litllm.model.gpt import GPT, Attention, apply_rope, output_logits


class SlotCache:
    """Keys and values for ``slots`` sequences of up to ``max_len`` positions each, for every layer.

    Args:
        model: The model whose layers the cache serves (its config gives the shapes).
        slots: How many sequences can be cached at once.
        max_len: Positions per slot (default: the model's block size).
    """

    def __init__(self, model: GPT, slots: int, max_len: int | None = None) -> None:
        config = model.config
        self.slots = slots
        self.max_len = max_len or config.block_size
        if self.max_len > config.block_size:
            raise ValueError(f"cache length {self.max_len} exceeds the model's block_size {config.block_size}")
        weight = model.wte.weight
        shape = (slots, config.n_kv_head, self.max_len, config.head_dim)
        self.k = [torch.zeros(shape, dtype=weight.dtype, device=weight.device) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, dtype=weight.dtype, device=weight.device) for _ in range(config.n_layer)]


@torch.inference_mode()
def forward_rows(
    model: GPT,
    cache: SlotCache,
    slots: torch.Tensor,
    tokens: torch.Tensor,
    starts: torch.Tensor,
    last: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next-token logits ``(B, T, vocab)`` for ``tokens`` ``(B, T)`` placed at ``starts + [0, T)`` in ``slots``.

    Row ``i`` continues the sequence cached in slot ``slots[i]``, whose first ``starts[i]`` positions
    are already filled; the new tokens' keys and values are written after them. Every row gets the
    same number ``T`` of new tokens (1 when decoding). Prompts of different lengths are prefilled
    together right-padded: the padding's keys and values land past the row's prompt, where the next
    decode step overwrites them before any query can see them. With ``last`` (B,) only the logits at
    token ``last[i]`` of each row are computed and returned, ``(B, vocab)``: the head over the whole
    vocabulary is then paid once per row, not once per prompt token.
    """
    b, t = tokens.shape
    device = tokens.device
    positions = starts[:, None] + torch.arange(t, device=device)[None, :]  # (B, T)
    end = int(positions.max()) + 1
    if end > cache.max_len:
        raise ValueError(f"sequence length {end} exceeds the cache's {cache.max_len} positions")
    x = model.wte(tokens)
    if model.wpe is not None:
        x = x + model.wpe(positions)
    rope = None
    if model.config.position == "rope":
        rope = (model.rope_cos[positions][:, None], model.rope_sin[positions][:, None])  # (B, 1, T, hd)
    # Key j of row i is visible to query position p when j <= p (and within a sliding window).
    kpos = torch.arange(end, device=device)[None, None, :]
    mask = kpos <= positions[:, :, None]  # (B, T, end)
    window = model.config.sliding_window
    if window is not None:
        mask = mask & (kpos > positions[:, :, None] - window)
    mask = mask[:, None]  # (B, 1, T, end): broadcast over heads
    # Rows in consecutive slots (the usual case: free slots are handed out lowest first) read their
    # cached keys and values as a view; other slot sets are gathered (a copy per layer and step).
    first = int(slots[0])
    run = slice(first, first + b) if torch.equal(slots, torch.arange(first, first + b, device=device)) else None
    for i, block in enumerate(model.blocks):
        h = _attention(block.attn, block.norm_1(x), rope, cache.k[i], cache.v[i], slots, run, positions, mask, end)
        x = x + h
        x = x + block.mlp(block.norm_2(x))
    if last is not None:
        x = x[torch.arange(b, device=device), last]
    return output_logits(model, x)  # final norm, head and the soft cap, as GPT.forward


def _attention(
    attn: Attention,
    x: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slots: torch.Tensor,
    run: slice | None,
    positions: torch.Tensor,
    mask: torch.Tensor,
    end: int,
) -> torch.Tensor:
    """``Attention.forward`` with the slot cache: the same projections, per-row positions and mask."""
    b, t, _ = x.shape
    q, k, v = attn.qkv(x).split(
        [attn.n_head * attn.head_dim, attn.n_kv_head * attn.head_dim, attn.n_kv_head * attn.head_dim], dim=-1
    )
    q = q.view(b, t, attn.n_head, attn.head_dim).transpose(1, 2)
    k = k.view(b, t, attn.n_kv_head, attn.head_dim).transpose(1, 2)
    v = v.view(b, t, attn.n_kv_head, attn.head_dim).transpose(1, 2)
    if attn.qk_norm:
        q, k = attn.q_norm(q), attn.k_norm(k)
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    # Indexing with (slots, :, positions) puts the indexed dimensions first: (B, T, n_kv_head, hd).
    k_cache[slots[:, None], :, positions] = k.transpose(1, 2).to(k_cache.dtype)
    v_cache[slots[:, None], :, positions] = v.transpose(1, 2).to(v_cache.dtype)
    rows = run if run is not None else slots
    keys, values = k_cache[rows, :, :end], v_cache[rows, :, :end]
    y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=attn.n_kv_head != attn.n_head)
    y = y.transpose(1, 2).reshape(b, t, attn.n_head * attn.head_dim)
    return attn.proj(y)
