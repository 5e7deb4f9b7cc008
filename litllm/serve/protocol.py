"""The OpenAI API's shapes: request bodies (checked by pydantic), responses, stream chunks and errors.

Only the fields litllm acts on are declared; others that OpenAI clients send (``user``,
``logprobs``, ``presence_penalty``, ...) are accepted and ignored, as many OpenAI-compatible servers do.
``top_k`` is an extension (as in vLLM): OpenAI has no such parameter.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field


class APIError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}`` with HTTP ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class StreamOptions(BaseModel):
    include_usage: bool = False
    """Send one more chunk before ``[DONE]`` with the request's ``usage`` (and no choices)."""


class SamplingRequest(BaseModel):
    """The parameters both endpoints share."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    n: int | None = Field(None, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    def stop_strings(self) -> tuple[str, ...]:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stop) > 4:
            raise APIError(400, "at most 4 stop sequences are allowed", "stop")
        return tuple(s for s in stop if s)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    """The newer name of ``max_tokens`` in the chat API."""


class CompletionRequest(SamplingRequest):
    prompt: str | list[str]
    """One prompt or several (each gets ``n`` choices); an empty string starts a new document."""

    def prompts(self) -> list[str]:
        if isinstance(self.prompt, str):
            return [self.prompt]
        if not self.prompt:
            raise APIError(400, "'prompt' is an empty list: give a string or a list of strings", "prompt")
        return self.prompt


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}


def completion_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}


class Reply:
    """The fixed fields of one response (id, time, model) and how its bodies and chunks look.

    Args:
        chat: True for ``/v1/chat/completions``, False for ``/v1/completions``.
        model: The model name answered.
    """

    def __init__(self, chat: bool, model: str) -> None:
        self.chat, self.model = chat, model
        self.id = new_id("chatcmpl" if chat else "cmpl")
        self.created = now()

    def _head(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def body(self, texts: list[str], reasons: list[str | None], used: dict[str, int]) -> dict[str, Any]:
        """The whole (non-streamed) response."""
        make = chat_choice if self.chat else completion_choice
        choices = [make(i, text, reason) for i, (text, reason) in enumerate(zip(texts, reasons))]
        return {**self._head(False), "choices": choices, "usage": used}

    def chunk(self, index: int, text: str | None, finish_reason: str | None = None, role: bool = False) -> dict:
        """One stream chunk: new text of choice ``index`` (``None``: an empty delta), or its finish reason."""
        if self.chat:
            delta: dict[str, str] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = completion_choice(index, text or "", finish_reason)
        return {**self._head(True), "choices": [choice]}

    def usage_chunk(self, used: dict[str, int]) -> dict[str, Any]:
        """The last chunk when ``stream_options.include_usage`` is set: no choices, the usage."""
        return {**self._head(True), "choices": [], "usage": used}
