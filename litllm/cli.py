"""The ``litllm`` command: a table of verbs, each run by the stage that owns it.

A verb's module is imported only when the verb runs, so ``litllm chat`` does not pay for Lightning
and ``litllm prepare`` does not pay for torch. Errors caused by input (``litllm.errors.UserError``
and missing files) print as one line; ``LITLLM_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    """One ``litllm`` verb: where its entry point lives and the line ``litllm --help`` shows."""

    target: str
    """``module:function``; the function takes the arguments after the verb."""
    usage: str
    whole_command: bool = False
    """Pass the whole command line, verb included (LightningCLI parses ``fit ...`` itself), not what follows it."""


_LIGHTNING = "litllm.train.cli:lightning_main"

VERBS: dict[str, Verb] = {
    "run": Verb(
        "litllm.pipeline.cli:run_main",
        "a whole pipeline, zero to chat, with a report card: litllm run --config recipes/zero_to_chat.yaml",
    ),
    "report": Verb("litllm.report.cli:report_main", "(re)build the report card of a run directory: litllm report DIR"),
    "fit": Verb(_LIGHTNING, "train a recipe (LightningCLI): litllm fit --config recipes/X.yaml", True),
    "validate": Verb(_LIGHTNING, "evaluate a checkpoint: litllm validate --config X.yaml --ckpt_path PATH", True),
    "test": Verb(_LIGHTNING, "the same on the recipe's test data", True),
    "finetune": Verb(
        "litllm.train.cli:finetune_main",
        "instruction-tune or align a model directory: litllm finetune full|lora|qlora|dpo --config recipes/X.yaml",
    ),
    "lr-find": Verb(
        "litllm.train.lr_find:lr_find_main",
        "learning-rate range test on a recipe: litllm lr-find --config recipes/X.yaml (the value to use, a plot)",
    ),
    "tokenizer": Verb(
        "litllm.model.cli:tokenizer_main", "train a byte-level BPE: litllm tokenizer train --files a.txt --out tok/"
    ),
    "prepare": Verb(
        "litllm.prepare.cli:prepare_main",
        "clean, deduplicate and tokenize a corpus into shards: litllm prepare --config recipes/prepare_web.yaml",
    ),
    "presets": Verb("litllm.model.cli:presets_main", "list the model presets with their parameter counts"),
    "generate": Verb(
        "litllm.infer.textgen:generate_main", 'generate text: litllm generate --model_dir DIR --prompt "ROMEO:"'
    ),
    "chat": Verb("litllm.infer.chat:chat_main", "talk to a model directory (its saved prompt template, /reset, /exit)"),
    "serve": Verb(
        "litllm.serve.cli:serve_main",
        "OpenAI-compatible HTTP server with a chat page: litllm serve --model_dir DIR --port 8000",
    ),
    "evaluate": Verb(
        "litllm.infer.evaluate:evaluate_main",
        "loss, perplexity, bits per byte: litllm evaluate --model_dir DIR --data FILE",
    ),
    "convert": Verb(
        "litllm.interop.convert:convert_main",
        "Hugging Face interop: litllm convert from-hf HF_DIR OUT_DIR | to-hf DIR HF_DIR",
    ),
}


def usage() -> str:
    width = max(len(name) for name in VERBS)
    lines = [f"  {name:<{width}}  {verb.usage}" for name, verb in VERBS.items()]
    return (
        "usage: litllm VERB ...\n\nverbs:\n"
        + "\n".join(lines)
        + "\n\n`litllm fit --help` lists every option of a run; `--print_config` prints the full resolved recipe.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    name = args[0] if args else None
    if name in (None, "-h", "--help", "help"):
        print(usage())
        return
    verb = VERBS.get(name)
    if verb is None:
        print(f"litllm: unknown verb {name!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module, function = verb.target.split(":")
    try:
        entry = getattr(importlib.import_module(module), function)
        # None lets LightningCLI read sys.argv itself, as Lightning's DDP launcher re-runs it in each process.
        entry(argv if verb.whole_command else args[1:])
    except Exception as err:
        cause = _user_error(err)
        if cause is None or os.environ.get("LITLLM_DEBUG"):
            raise
        print(f"litllm: error: {cause}", file=sys.stderr)
        sys.exit(1)


def _user_error(err: BaseException) -> BaseException | None:
    """The user-input error behind ``err``, if any (jsonargparse wraps errors raised while instantiating)."""
    from litllm.errors import UserError

    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (UserError, FileNotFoundError)):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
