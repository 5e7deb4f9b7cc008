"""Greedy answers of a model to fixed prompts, checked against expected text: what a report card shows.

A prompt file is a JSON list; each item is a string (the user's message) or an object with
``instruction`` (or ``prompt``), an optional ``input`` and an optional ``expect``: a string, or a list
of strings, each of which must appear in the answer (case-insensitive) for it to count as correct.
A model with a saved template answers inside it (as ``litllm chat`` would); a model without one
continues the raw text of the message, so a pretrained model can be shown before and after finetuning.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from litllm.corpus.readers import BUILTIN_CORPORA
from litllm.errors import DataError
from litllm.infer.textgen import stream_text
from litllm.model.gpt import GPT
from litllm.model.templates import Template
from litllm.model.tokenizer import Tokenizer


@dataclass(frozen=True)
class Prompt:
    """One fixed prompt: the user's instruction, its optional input, and the strings a right answer contains."""

    instruction: str
    input: str = ""
    expect: tuple[str, ...] = ()


@dataclass
class Answer:
    """A model's greedy answer to a ``Prompt`` and whether it holds every expected string (None: nothing expected)."""

    instruction: str
    input: str
    answer: str
    expect: list[str] = field(default_factory=list)
    correct: bool | None = None
    words: float = 0.0
    """Share of the answer's words found in the built-in corpora (or numbers): a check that an aligned
    model still writes words, not token soup (``word_share``)."""


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a JSON file (see the module docstring); a malformed item names the file and its index."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of prompts, got {type(items).__name__}")
    return [_prompt(item, f"{path} item {i}") for i, item in enumerate(items)]


def _prompt(item: object, where: str) -> Prompt:
    if isinstance(item, str):
        return Prompt(item)
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected a string or an object, got {type(item).__name__}")
    unknown = set(item) - {"instruction", "prompt", "input", "expect"}
    if unknown:
        raise DataError(f"{where}: unknown key(s) {sorted(unknown)} (known: instruction or prompt, input, expect)")
    text = item.get("instruction", item.get("prompt"))
    if not isinstance(text, str) or not text:
        raise DataError(f"{where}: needs a non-empty 'instruction' (or 'prompt') string")
    expect = item.get("expect", ())
    expect = (expect,) if isinstance(expect, str) else tuple(expect)
    return Prompt(text, str(item.get("input", "")), expect)


_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*%?$")


@functools.cache
def known_words() -> frozenset[str]:
    """Every word (lower case) of the built-in corpora: what a model trained on them can spell."""
    words: set[str] = set()
    for path in BUILTIN_CORPORA.values():
        words.update(re.findall(r"[a-z]+(?:'[a-z]+)?", path.read_text(encoding="utf-8").lower()))
    return frozenset(words)


def word_share(text: str, vocabulary: frozenset[str] | None = None) -> float:
    """Share of the whitespace-separated pieces of ``text`` (edge punctuation stripped) that are numbers or
    words of ``vocabulary`` (default: ``known_words``); hyphenated words count when every part does."""
    vocabulary = known_words() if vocabulary is None else vocabulary
    pieces = [p.strip(".,;:!?\"'()[]").lower() for p in text.split()]
    pieces = [p for p in pieces if p]
    good = sum(bool(_NUMBER.match(p)) or all(part in vocabulary for part in p.split("-")) for p in pieces)
    return good / len(pieces) if pieces else 0.0


def render(prompt: Prompt, template: Template | None) -> tuple[str, tuple[str, ...]]:
    """The text the model continues, and the strings that end its answer."""
    if template is None:
        text = prompt.instruction + (f"\n{prompt.input}" if prompt.input else "")
        return text + "\n", ("\n\n",)
    message = {"role": "user", "content": prompt.instruction}
    if prompt.input:
        message["input"] = prompt.input
    return template.prompt([message]), template.stop


def answer_prompts(
    model: GPT, tokenizer: Tokenizer, template: Template | None, prompts: list[Prompt], max_new_tokens: int = 48
) -> list[Answer]:
    """Greedy answers (temperature 0, so the same model always gives the same ones)."""
    answers = []
    for prompt in prompts:
        text, stop = render(prompt, template)
        reply = stream_text(
            model, tokenizer, text, max_new_tokens, temperature=0.0, top_k=None, stop=stop, stay_in_context=True
        ).strip()
        correct = all(e.lower() in reply.lower() for e in prompt.expect) if prompt.expect else None
        answers.append(
            Answer(prompt.instruction, prompt.input, reply, list(prompt.expect), correct, round(word_share(reply), 3))
        )
    return answers


def summarise(answers: list[Answer]) -> dict:
    """``{"answers": [...], "correct": k, "checked": n, "word_share": mean}`` for a results file."""
    checked = [a for a in answers if a.correct is not None]
    return {
        "answers": [asdict(a) for a in answers],
        "correct": sum(bool(a.correct) for a in checked),
        "checked": len(checked),
        "word_share": round(sum(a.words for a in answers) / len(answers), 3) if answers else 0.0,
    }


def answer_file(model: GPT, tokenizer: Tokenizer, template: Template | None, path: str, max_new_tokens: int) -> dict:
    """Read ``path``'s prompts, answer them greedily and summarise (see ``summarise``)."""
    with torch.inference_mode():
        return summarise(answer_prompts(model, tokenizer, template, read_prompts(path), max_new_tokens))
