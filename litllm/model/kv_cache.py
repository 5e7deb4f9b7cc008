"""The key/value cache of incremental decoding: ``GPT.forward(idx, cache=KVCache(config, max_len))``.

Each block keeps the keys and values of the positions seen so far, so each generation step computes
only the new token(s); a sliding-window model keeps a ring of ``window`` positions instead.
"""

from __future__ import annotations

import torch

from litllm.model.config import ModelConfig


class LayerCache:
    """Keys and values of one layer for positions ``[0, pos)``.

    Buffers hold ``max_len`` positions, or only ``window`` of them for a sliding-window model (a ring:
    position p lives in slot p % window, and nothing older than the window is ever attended to).
    They are allocated at the first write, with the dtype and device of the keys: under autocast
    they are bf16 even when the weights are fp32.
    """

    def __init__(self, owner: KVCache, window: int | None = None) -> None:
        self.owner = owner
        self.window = window if window is not None and window < owner.max_len else None
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def pos(self) -> int:
        return self.owner.pos

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Add the new ``k``, ``v`` (B, n_kv_head, T, head_dim) at positions ``[pos, pos + T)``.

        Returns the keys and values the new queries attend over and the position of the first of them.
        """
        start, end = self.pos, self.pos + k.size(2)
        if end > self.owner.max_len:
            raise ValueError(f"KV cache of {self.owner.max_len} positions is full (needs {end})")
        if self.k is None or self.k.shape[0] != k.shape[0] or self.k.dtype != k.dtype:
            shape = (k.shape[0], k.shape[1], self.window or self.owner.max_len, k.shape[3])
            self.k = torch.empty(shape, dtype=k.dtype, device=k.device)
            self.v = torch.empty(shape, dtype=v.dtype, device=v.device)
        if self.window is None:
            self.k[:, :, start:end] = k
            self.v[:, :, start:end] = v
            return self.k[:, :, :end], self.v[:, :, :end], 0
        w = self.window
        if k.size(2) == 1:
            # One new token (generation): write it over the position that just left the window; the
            # ring then holds exactly the window of the new query, in an order attention does not care about.
            self.k[:, :, start % w] = k[:, :, 0]
            self.v[:, :, start % w] = v[:, :, 0]
            n = min(end, w)
            return self.k[:, :, :n], self.v[:, :, :n], end - n
        # Several new tokens: the cached window in position order, then the new ones (the caller masks).
        old = torch.arange(max(0, start - w), start, device=k.device) % w
        keys, values = torch.cat([self.k[:, :, old], k], dim=2), torch.cat([self.v[:, :, old], v], dim=2)
        kept = torch.arange(max(0, end - w), end, device=k.device)
        self.k[:, :, kept % w] = keys[:, :, -len(kept) :]
        self.v[:, :, kept % w] = values[:, :, -len(kept) :]
        return keys, values, start - len(old)


class KVCache:
    """The key/value cache of a whole model: one ``LayerCache`` per block and a shared position."""

    def __init__(self, config: ModelConfig, max_len: int) -> None:
        if max_len > config.block_size:
            raise ValueError(f"cache length {max_len} exceeds the model's block_size {config.block_size}")
        self.max_len = max_len
        self.pos = 0
        self.layers = [LayerCache(self, config.sliding_window) for _ in range(config.n_layer)]

    def layer(self, i: int) -> LayerCache:
        return self.layers[i]

    def reset(self) -> None:
        """Forget every cached position (the buffers are kept for reuse)."""
        self.pos = 0
