"""Sampling from a model: temperature, top-k and top-p (nucleus), greedy at temperature 0.

Generation runs on the model's key/value cache: the prompt is encoded once, then one token per step.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator

import torch

from litllm.model.gpt import GPT


def last_logits(logits: torch.Tensor) -> torch.Tensor:
    """Each row's last-position logits (B, V), over the whole vocabulary (under tensor parallelism the head
    gives each process a slice of it, as a DTensor: gathered here)."""
    last = logits[:, -1]
    return last.full_tensor() if hasattr(last, "full_tensor") else last


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token id for each row of ``logits`` (B, V)."""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the tokens ranked above it already cover top_p
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def fit_prompt(prompt: torch.Tensor, max_new_tokens: int, block_size: int, make_room: bool = False) -> torch.Tensor:
    """Crop a ``prompt`` (B, T) that fills the whole context from the left, with a warning.

    A prompt shorter than ``block_size`` is kept whole: the model sees all of it, and generation
    that later runs out of context slides its window (see ``generate_tokens``). A longer one keeps
    its last ``max(block_size - max_new_tokens, block_size // 2)`` tokens: room for the new tokens,
    but at least half the context stays prompt. With ``make_room`` any prompt that leaves fewer than
    ``max_new_tokens`` is cropped so (lm-eval's way).
    """
    t = prompt.size(1)
    keep = max(block_size - max_new_tokens, block_size // 2, 1)
    if t + max_new_tokens <= block_size or t <= keep or (t < block_size and not make_room):
        return prompt
    warnings.warn(
        f"prompt of {t} tokens + {max_new_tokens} new tokens exceed the model's context of {block_size}: "
        f"keeping the last {keep} prompt tokens",
        stacklevel=3,
    )
    return prompt[:, -keep:]


@torch.inference_mode()
def generate_tokens(
    model: GPT,
    prompt: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield new token ids (B, 1) one step at a time after ``prompt`` (B, T).

    With ``use_cache`` (the default) the prompt runs through the model once and each later step
    feeds only the newest token, reusing the cached keys and values. A prompt that leaves no room
    for the new tokens is cropped from the left with a warning (``fit_prompt``); if the context
    still fills up, the most recent half of it is re-encoded and generation continues.
    ``use_cache=False`` recomputes the visible context (cropped to the block size) at every step:
    the slow reference. Rows that produced ``eos_id`` keep yielding ``eos_id``; the iterator ends
    when every row has.
    """
    if max_new_tokens <= 0:
        return
    batch = prompt.size(0)
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    if use_cache:
        steps = _cached_logits(model, fit_prompt(prompt, max_new_tokens, model.config.block_size), max_new_tokens)
    else:
        steps = _recomputed_logits(model, prompt)
    logits = next(steps)
    for step in range(max_new_tokens):
        nxt = sample_next(logits, temperature, top_k, top_p, generator)
        if eos_id is not None:
            nxt = nxt.masked_fill(finished[:, None], eos_id)
            finished |= nxt.squeeze(-1) == eos_id
        yield nxt
        if (eos_id is not None and bool(finished.all())) or step == max_new_tokens - 1:
            return  # no forward pass for a token nobody will read
        logits = steps.send(nxt)


def _cached_logits(
    model: GPT, prompt: torch.Tensor, max_new_tokens: int
) -> Generator[torch.Tensor, torch.Tensor, None]:
    """Send the next token in, get the last-position logits (B, V) out; the first logits are the prompt's."""
    block = model.config.block_size
    total = prompt.size(1) + max_new_tokens
    cache = model.make_cache(min(block, total))
    # All tokens so far, so that the context can be re-encoded when it fills up.
    tokens = torch.empty(prompt.size(0), total, dtype=prompt.dtype, device=prompt.device)
    tokens[:, : prompt.size(1)] = prompt
    n = prompt.size(1)
    nxt = yield last_logits(model(prompt, cache))
    while True:
        tokens[:, n : n + 1] = nxt
        n += 1
        if cache.pos == cache.max_len:
            # Out of context: keep the most recent half and encode it again (positions restart at 0).
            keep = max(block // 2, 1)
            warnings.warn(
                f"the model's context of {block} tokens is full: generation goes on from the last {keep} tokens",
                stacklevel=3,
            )
            cache.reset()
            nxt = yield last_logits(model(tokens[:, n - keep : n], cache))
        else:
            nxt = yield last_logits(model(nxt, cache))


def _recomputed_logits(model: GPT, prompt: torch.Tensor) -> Generator[torch.Tensor, torch.Tensor, None]:
    """Like ``_cached_logits`` but runs the whole visible context through the model at every step."""
    idx = prompt
    while True:
        nxt = yield last_logits(model(idx[:, -model.config.block_size :]))
        idx = torch.cat([idx, nxt], dim=1)


def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, **kwargs) -> torch.Tensor:
    """Return ``prompt`` followed by up to ``max_new_tokens`` sampled tokens (see ``generate_tokens``)."""
    new = list(generate_tokens(model, prompt, max_new_tokens, **kwargs))
    return torch.cat([prompt, *new], dim=1) if new else prompt
