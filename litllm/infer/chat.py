"""``litllm chat``: a multi-turn conversation with a model directory, streamed as it is generated.

A finetuned model has its prompt template saved beside it (``template.json``): each turn renders
the whole conversation with it and the reply ends at the template's stop strings. A model without
one (pretrained only) continues the accumulated text instead: what you type is appended, and the
model writes on from there.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import torch

from litllm.infer.textgen import (
    add_sampling_args,
    inference_kwargs,
    load_for_inference,
    one_line_warnings,
    sampling_kwargs,
    stream_text,
)
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Message, Template
from litllm.model.tokenizer import Tokenizer

HELP = "Type a message and press Enter. /reset starts over, /exit (or /quit, or end of input) quits."


class Conversation:
    """The state of one chat: messages for a template, or the running text for plain continuation."""

    def __init__(self, template: Template | None, system: str | None = None, stop: tuple[str, ...] = ()) -> None:
        self.template, self.system, self.extra_stop = template, system, tuple(stop)
        self.reset()

    def reset(self) -> None:
        self.messages: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        self.text = ""

    def prompt(self, user: str) -> str:
        """The model's input for the next reply, after the user says ``user``."""
        if self.template is None:
            self.text += user if not self.text else "\n" + user
            return self.text
        self.messages.append({"role": "user", "content": user})
        return self.template.prompt(self.messages)

    def add_reply(self, reply: str) -> None:
        if self.template is None:
            self.text += reply
        else:
            self.messages.append({"role": "assistant", "content": reply})

    @property
    def stop(self) -> tuple[str, ...]:
        return (self.template.stop if self.template is not None else ()) + self.extra_stop


def chat_loop(
    model: GPT,
    tokenizer: Tokenizer,
    conversation: Conversation,
    stdin: TextIO,
    stdout: TextIO,
    generator: torch.Generator | None = None,
    **sampling,
) -> int:
    """Read user turns from ``stdin`` until ``/exit`` or end of input; stream replies to ``stdout``. Returns the turns."""

    def write(text: str) -> None:
        stdout.write(text)
        stdout.flush()

    turns = 0
    while True:
        write("> ")
        line = stdin.readline()
        if not line:  # end of input
            write("\n")
            return turns
        user = line.rstrip("\n")
        command = user.strip()
        if command in ("/exit", "/quit"):
            return turns
        if command == "/reset":
            conversation.reset()
            write("(conversation reset)\n")
            continue
        if command.startswith("/") and " " not in command:  # a mistyped command, not a message for the model
            write(f"(unknown command {command}: /reset starts over, /exit quits)\n")
            continue
        if not command:
            continue
        prompt = conversation.prompt(user)
        reply = stream_text(
            model,
            tokenizer,
            prompt,
            stop=conversation.stop,
            generator=generator,
            write=write,
            stay_in_context=True,
            **sampling,
        )
        conversation.add_reply(reply)
        write("\n")
        turns += 1


def chat_main(args: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """``litllm chat --model_dir DIR``: talk to a model in the terminal."""
    parser = argparse.ArgumentParser(prog="litllm chat", description="Chat with a model directory. " + HELP)
    add_sampling_args(parser, max_new_tokens=256)
    parser.add_argument("--system", default=None, help="a system message (models with a template only)")
    opts = parser.parse_args(args)
    sampling = sampling_kwargs(opts)  # checked before the model is loaded
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout

    model, tokenizer = load_for_inference(opts.model_dir, **inference_kwargs(opts))
    template = ModelDir(opts.model_dir).template()
    mode = f"template {template.name!r}" if template else "no template saved: plain continuation of the text"
    stdout.write(f"litllm chat ({mode}). {HELP}\n")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(opts.seed)
    conversation = Conversation(template, opts.system, stop=tuple(opts.stop))
    with one_line_warnings():
        chat_loop(model, tokenizer, conversation, stdin, stdout, generator=generator, **sampling)
