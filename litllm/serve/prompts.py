"""From a request to what the engine runs: prompt token ids and sampling settings, checked against the context.

Chat messages are rendered with the model directory's saved template (what ``litllm chat`` does). A
model saved without one (pretrained only) continues the conversation's text as ``litllm chat``
does then: each user message on a new line, the model's replies appended as written.
"""

from __future__ import annotations

from litllm.model.templates import Message, Template
from litllm.model.tokenizer import Tokenizer
from litllm.serve.engine import Sampling
from litllm.serve.protocol import APIError, ChatMessage, SamplingRequest

DEFAULT_MAX_TOKENS = 256
"""New tokens when a request names no ``max_tokens`` (fewer if the context has less room)."""


def chat_text(messages: list[ChatMessage], template: Template | None) -> str:
    """The model's input for the next assistant reply to ``messages``."""
    if template is not None:
        # OpenAI's newer "developer" role is the system message under another name
        turns: list[Message] = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in messages
        ]
        return template.prompt(turns)
    text = ""
    for m in messages:
        if m.role == "user":
            text += m.text() if not text else "\n" + m.text()
        elif m.role == "assistant":
            text += m.text()
    return text


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of ``text``; an empty prompt starts a fresh document (the end-of-text token)."""
    return tokenizer.encode(text) if text else [tokenizer.eot_id]


def sampling_for(
    request: SamplingRequest, prompts: list[list[int]], context: int, param: str, max_tokens: int | None = None
) -> Sampling:
    """The engine's settings for ``request``; ``APIError`` (400) when a prompt leaves no room in the context.

    As in OpenAI's API, an explicit ``max_tokens`` must fit beside the prompt; without one, generation
    runs for up to ``DEFAULT_MAX_TOKENS`` or to the end of the context, whichever comes first.
    """
    longest = max(len(p) for p in prompts)
    room = context - longest
    if room < 1:
        raise APIError(
            400,
            f"This model's maximum context length is {context} tokens, but the prompt has {longest} tokens "
            "and leaves no room for a reply.",
            param,
            "context_length_exceeded",
        )
    if max_tokens is not None and longest + max_tokens > context:
        raise APIError(
            400,
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{longest + max_tokens} tokens ({longest} in the {param}, {max_tokens} in the completion). "
            "Please reduce the length of the prompt or the completion.",
            param,
            "context_length_exceeded",
        )
    temperature = 1.0 if request.temperature is None else request.temperature
    top_p = request.top_p if request.top_p is not None and request.top_p < 1 else None
    return Sampling(
        max_tokens=max_tokens if max_tokens is not None else min(DEFAULT_MAX_TOKENS, room),
        temperature=temperature,
        top_p=top_p,
        top_k=request.top_k or None,
        stop=request.stop_strings(),
        seed=request.seed,
    )
