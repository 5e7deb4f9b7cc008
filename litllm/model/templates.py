"""Prompt templates: how a conversation becomes text, and which parts of it the model learns.

A conversation is a list of messages ``{"role": "system"|"user"|"assistant", "content": str}``
(an Alpaca record becomes one user message with an optional ``input`` and one assistant message).
``Template.segments`` renders it as ``(text, is_response)`` pieces: finetuning puts the loss only on
the response pieces; ``Template.prompt`` renders everything up to where the model should answer.
The template a model was finetuned with is saved in its model directory (``ModelDir.save_template``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from litllm.errors import ConfigError
from litllm.model.tokenizer import EOT

Message = dict[str, str]


@dataclass(frozen=True)
class Template(ABC):
    """Base class: subclasses say how each role is framed."""

    name: str = "base"
    special_tokens: tuple[str, ...] = ()
    """Tokens the tokenizer must have as single special tokens (added when missing)."""
    stop: tuple[str, ...] = (EOT,)
    """Strings that end a generated response."""

    @abstractmethod
    def segments(self, messages: list[Message]) -> list[tuple[str, bool]]:
        """The conversation as ``(text, is_response)`` pieces, in order."""

    def prompt(self, messages: list[Message]) -> str:
        """Text of the conversation so far followed by the opening of the assistant's reply."""
        pieces = self.segments([*messages, {"role": "assistant", "content": ""}])
        # drop the (empty) response and its end marker: the model writes those
        return "".join(text for text, _ in pieces[:-1])


@dataclass(frozen=True)
class Alpaca(Template):
    """The Stanford Alpaca format, as used in "Build a Large Language Model (From Scratch)"."""

    name: str = "alpaca"
    preamble: str = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    )

    def segments(self, messages: list[Message]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        system = next((m["content"] for m in messages if m["role"] == "system"), self.preamble)
        text = system
        for message in messages:
            if message["role"] == "user":
                text += f"\n\n### Instruction:\n{message['content']}"
                if message.get("input"):
                    text += f"\n\n### Input:\n{message['input']}"
                text += "\n\n### Response:\n"
            elif message["role"] == "assistant":
                out.append((text, False))
                out.append((message["content"] + EOT, True))
                text = ""
        if text:
            out.append((text, False))
        return out


@dataclass(frozen=True)
class ChatML(Template):
    """ChatML-style turns: ``<|im_start|>role\\ncontent<|im_end|>\\n``; the reply ends with ``<|im_end|>``."""

    name: str = "chatml"
    special_tokens: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")
    stop: tuple[str, ...] = ("<|im_end|>", EOT)

    def segments(self, messages: list[Message]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        text = ""
        for message in messages:
            content = message["content"]
            if message["role"] == "user" and message.get("input"):
                content = f"{content}\n\n{message['input']}"
            if message["role"] == "assistant":
                out.append((text + "<|im_start|>assistant\n", False))
                out.append((content + "<|im_end|>", True))
                text = "\n"
            else:
                text += f"<|im_start|>{message['role']}\n{content}<|im_end|>\n"
        if text.strip():
            out.append((text, False))
        return out


TEMPLATES: dict[str, Template] = {t.name: t for t in (Alpaca(), ChatML())}


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise ConfigError(f"unknown prompt template {name!r}; choose one of {sorted(TEMPLATES)}")
    return TEMPLATES[name]
