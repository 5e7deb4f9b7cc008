"""Text in, text out: streaming generation from a model directory, and the ``litllm generate`` verb.

``TextStream`` turns tokens into printable text as they arrive: it holds back an incomplete UTF-8
character and any tail that could still become a stop string, so nothing is printed that later
has to be taken back. ``stream_text`` runs the model on a prompt and writes the text as it comes.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import torch

from litllm._moved import warn_renamed
from litllm.errors import ConfigError, DataError
from litllm.infer.generate import fit_prompt, generate_tokens
from litllm.infer.quantize import QUANTIZE_CHOICES, quantize_model
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import Tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TextStream:
    """Incremental detokenizer that stops at end-of-text, at stop tokens and at stop strings."""

    def __init__(self, tokenizer: Tokenizer, stop: Iterable[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop_ids = {tokenizer.eot_id}
        self.stop_strings: list[str] = []
        for s in stop:
            token_id = tokenizer.backend.token_to_id(s)
            # A stop that is one token (e.g. <|im_end|>) is matched by id: decoding may hide special tokens.
            if token_id is not None:
                self.stop_ids.add(token_id)
            elif s:
                self.stop_strings.append(s)
        self.ids: list[int] = []
        self.text = ""  # everything decoded so far, up to a stop string
        self.emitted = 0  # characters of ``text`` already handed out
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add one token; return the text that is now safe to print ("" while holding back)."""
        if self.stopped:
            return ""
        if token_id in self.stop_ids:
            self.stopped = True
            return self._flush()
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""  # a multi-byte character split across tokens: wait for the rest
        self.text = text
        hits = [i for i in (text.find(s, max(0, self.emitted - len(s))) for s in self.stop_strings) if i >= 0]
        if hits:
            self.text = text[: min(hits)]
            self.stopped = True
            return self._flush()
        safe = len(text) - self._stop_prefix_len(text)
        out = text[self.emitted : safe]
        self.emitted = max(self.emitted, safe)
        return out

    def finish(self) -> str:
        """The held-back rest, once generation is over."""
        return self._flush()

    def _flush(self) -> str:
        out = self.text[self.emitted :]
        self.emitted = len(self.text)
        return out

    def _stop_prefix_len(self, text: str) -> int:
        """Length of the longest tail of ``text`` that begins some stop string."""
        best = 0
        for s in self.stop_strings:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if s.startswith(text[-n:]):
                    best = n
                    break
        return best


def stream_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    top_p: float | None = None,
    stop: Iterable[str] = (),
    generator: torch.Generator | None = None,
    write: Callable[[str], object] | None = None,
    stay_in_context: bool = False,
    make_room: bool = False,
) -> str:
    """Generate a continuation of ``prompt``, passing each new piece of text to ``write``; return it all.

    An empty prompt starts from the end-of-text token (a fresh document). With ``stay_in_context``
    (chat and answers, where a reply must see its whole prompt) the reply ends, with a warning, where
    the model's context is full instead of sliding the window over the prompt; with ``make_room`` as well,
    a prompt that leaves fewer than ``max_new_tokens`` is first cropped from the left to leave them (at
    least half the context stays prompt), as lm-eval's Hugging Face backend crops its contexts.
    """
    device = next(model.parameters()).device
    ids = tokenizer.encode(prompt) if prompt else [tokenizer.eot_id]
    prompt_ids = torch.tensor([ids], dtype=torch.long, device=device)
    block = model.config.block_size
    context_cut = None  # with stay_in_context: the reply is cut by the context if it reaches this many tokens
    if stay_in_context:
        prompt_ids = fit_prompt(prompt_ids, max_new_tokens, block, make_room=make_room)
        room = block - prompt_ids.size(1)
        if room < max_new_tokens:
            context_cut = max_new_tokens = room
    stream = TextStream(tokenizer, stop)
    pieces: list[str] = []
    tokens = generate_tokens(
        model,
        prompt_ids,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        eos_id=tokenizer.eot_id,
        generator=generator,
    )
    for count, token in enumerate(tokens, start=1):
        piece = stream.push(int(token))
        if count == context_cut and not stream.stopped and int(token) != tokenizer.eot_id:
            warnings.warn(f"reply cut at {count} tokens: the model's context of {block} tokens is full", stacklevel=2)
        if piece:
            pieces.append(piece)
            if write is not None:
                write(piece)
        if stream.stopped:
            break
    rest = stream.finish()
    if rest:
        pieces.append(rest)
        if write is not None:
            write(rest)
    return "".join(pieces)


@contextmanager
def one_line_warnings(stream: TextIO | None = None) -> Iterator[None]:
    """Show warnings (e.g. a cropped prompt) as ``litllm: warning: ...`` lines, without source locations."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"litllm: warning: {message}", file=stream or sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def load_for_inference(
    model_dir: str, device: str | None = None, dtype: str = "float32", quantize: str | None = None
) -> tuple[GPT, Tokenizer]:
    """Load a model directory on ``device`` (default: CUDA when present) in ``dtype``, ready to generate.

    ``quantize="int8"`` then stores the Linear weights as int8 (``litllm.infer.quantize``); the
    activations stay in ``dtype``. Every inference verb (generate, chat, evaluate, serve) loads through here.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r} is not supported: choose one of {', '.join(DTYPES)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = ModelDir(model_dir).load(device=device, dtype=DTYPES[dtype])
    return quantize_model(model, quantize), tokenizer


def add_inference_args(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--dtype`` and ``--quantize``: how a model is loaded, the same for every inference verb."""
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES), help="weights and activations")
    parser.add_argument(
        "--quantize",
        default=None,
        choices=list(QUANTIZE_CHOICES),
        help="int8: store the Linear weights as int8 (weight-only; fast with --dtype bfloat16 on CPU)",
    )


def inference_kwargs(opts: argparse.Namespace) -> dict:
    """The ``load_for_inference`` keywords of options added by ``add_inference_args``."""
    return {"device": opts.device, "dtype": opts.dtype, "quantize": opts.quantize}


class _ModelDirOption(argparse.Action):
    """``--model_dir``, also accepted under its old name ``--checkpoint`` (with one deprecation line)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string == "--checkpoint":
            warn_renamed("--checkpoint", "--model_dir")
        setattr(namespace, self.dest, values)


def add_model_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model_dir",
        "--checkpoint",
        dest="model_dir",
        required=True,
        action=_ModelDirOption,
        help="model directory (what litllm fit / finetune / convert from-hf write)",
    )


def add_sampling_args(parser: argparse.ArgumentParser, max_new_tokens: int = 200) -> None:
    """Options shared by ``litllm generate`` and ``litllm chat``."""
    add_model_dir_arg(parser)
    parser.add_argument("--max_new_tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 picks the most likely token (greedy)")
    parser.add_argument("--top_k", type=int, default=50, help="sample among the k most likely tokens (0: all)")
    parser.add_argument("--top_p", type=float, default=1.0, help="sample within this probability mass (nucleus)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stop", action="append", default=[], help="stop when this string appears (repeatable)")
    add_inference_args(parser)


def sampling_kwargs(opts: argparse.Namespace) -> dict:
    """The sampling settings of ``opts``, each checked (``ConfigError`` names the first bad one)."""
    checks = [
        ("--max_new_tokens", opts.max_new_tokens, opts.max_new_tokens >= 1, "at least 1"),
        ("--temperature", opts.temperature, opts.temperature >= 0, "0 (greedy) or more"),
        ("--top_k", opts.top_k, opts.top_k >= 0, "0 (all tokens) or more"),
        ("--top_p", opts.top_p, 0 < opts.top_p <= 1, "in (0, 1]"),
    ]
    for flag, value, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{flag} {value} is out of range: it must be {expected}")
    return {
        "max_new_tokens": opts.max_new_tokens,
        "temperature": opts.temperature,
        "top_k": opts.top_k or None,
        "top_p": opts.top_p if opts.top_p < 1.0 else None,
    }


def read_prompts(path: str) -> list[str]:
    """One prompt per non-empty line; ``\\n`` inside a line stands for a line break."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"prompts file not found: {path}")
    prompts = [line.replace("\\n", "\n") for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise DataError(f"{path}: no prompts (one per line)")
    return prompts


def generate_main(args: list[str]) -> None:
    """``litllm generate``: print continuations of a prompt (or of each line of a file) as they are generated."""
    parser = argparse.ArgumentParser(prog="litllm generate", description="Generate text from a model directory.")
    add_sampling_args(parser)
    parser.add_argument("--prompt", default="", help="text to continue (empty: start a new document)")
    parser.add_argument("--prompts_file", default=None, help="a file of prompts, one per line, run one after another")
    parser.add_argument("--output", default=None, help="also write {prompt, completion} records to this JSONL file")
    opts = parser.parse_args(args)
    sampling = sampling_kwargs(opts)  # checked before the model is loaded

    prompts = read_prompts(opts.prompts_file) if opts.prompts_file else [opts.prompt]
    model, tokenizer = load_for_inference(opts.model_dir, **inference_kwargs(opts))
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(opts.seed)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    records = []
    with one_line_warnings():
        for i, prompt in enumerate(prompts):
            if i:
                write("\n\n")
            write(prompt)
            completion = stream_text(
                model, tokenizer, prompt, stop=opts.stop, generator=generator, write=write, **sampling
            )
            records.append({"prompt": prompt, "completion": completion})
    write("\n")
    if opts.output:
        with open(opts.output, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
