"""The ``litllm`` command.

    litllm fit|validate|test --config recipes/X.yaml [--key value ...]   LightningCLI runs
    litllm tokenizer train --files a.txt b.txt --vocab_size 8192 --out tok/
    litllm presets                                                       list model presets

``sys.argv`` is never rewritten: Lightning's DDP launcher re-executes the same command line in
every child process, so each verb parses the arguments it was given.
"""

from __future__ import annotations

import argparse
import os
import sys

LIGHTNING_VERBS = ("fit", "validate", "test", "predict")


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    class LitLLMCLI(LightningCLI):
        subcommand_mode = True

        """LightningCLI that keeps every output of a run under ``trainer.default_root_dir``.

        Unless the recipe says otherwise: CSV logs go to ``<root>/logs`` and ``ModelCheckpoint``
        callbacks without a ``dirpath`` write to ``<root>/checkpoints``, so ``--ckpt_path last``
        finds the previous run's checkpoint and one flag moves a whole run.
        """

        def add_arguments_to_parser(self, parser) -> None:
            if not self.subcommand_mode:  # `litllm finetune`: no subcommand parser supplies --ckpt_path
                parser.add_argument(
                    "--ckpt_path", type=str | None, default=None, help="checkpoint to resume from: a path, or 'last'"
                )

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand] if self.subcommand else self.config
            # Finetuning data must be tokenized with the starting model's tokenizer.
            model_args, data_args = cfg.model.get("init_args", {}), cfg.data.get("init_args", {})
            if (
                data_args.get("mode", "text") != "text"
                and data_args.get("tokenizer") is None
                and model_args.get("checkpoint")
            ):
                data_args["tokenizer"] = model_args["checkpoint"]
            trainer = cfg.trainer
            root = trainer.default_root_dir or "out"
            trainer.default_root_dir = root
            if trainer.logger is None or trainer.logger is True:
                trainer.logger = {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": root, "name": "logs"},
                }
            for callback in trainer.callbacks or []:
                class_path = getattr(callback, "class_path", "")
                if class_path.endswith("ModelCheckpoint") and callback.init_args.get("dirpath") is None:
                    callback.init_args["dirpath"] = os.path.join(root, "checkpoints")

    return LitLLMCLI


FINETUNE_METHODS = ("full", "lora", "qlora", "dpo")


def finetune_main(args: list[str]) -> None:
    """``litllm finetune full|lora|qlora|dpo --config X.yaml [--key value ...]``: a LightningCLI run of the
    recipe, then ``trainer.fit``. full/lora/qlora set ``model.method``; dpo runs the recipe's DPOModule with
    its own method (full or LoRA)."""
    if not args or args[0] not in FINETUNE_METHODS:
        print(
            f"usage: litllm finetune {{{'|'.join(FINETUNE_METHODS)}}} --config RECIPE.yaml [--key value ...]",
            file=sys.stderr,
        )
        sys.exit(2)
    method, rest = args[0], list(args[1:])
    if method != "dpo":
        rest = [*rest, "--model.init_args.method", method]  # the verb decides, whatever the recipe says
    cli = run_lightning(rest, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))


def run_lightning(args: list[str] | None = None, run: bool = True):
    """Run a LightningCLI subcommand with litllm's defaults; ``args`` None reads ``sys.argv``."""
    from litllm.data import LLMDataModule
    from litllm.train import LLMModule

    cls = _cli_class()
    cls.subcommand_mode = run
    return cls(
        LLMModule,
        LLMDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=1337,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
        args=args,
        run=run,
    )


def tokenizer_main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="litllm tokenizer", description="Train a byte-level BPE tokenizer.")
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="train on text files and save tokenizer.json")
    train.add_argument(
        "--files",
        nargs="+",
        default=["shakespeare"],
        help="text files, directories, globs or a built-in corpus name (default: shakespeare)",
    )
    train.add_argument("--vocab_size", type=int, default=8192)
    train.add_argument(
        "--special_tokens", nargs="+", default=["<|endoftext|>"], help="special tokens; the first is end-of-text"
    )
    train.add_argument("--min_frequency", type=int, default=2)
    train.add_argument("--text_field", default="text", help="field with the text in JSON/parquet files")
    train.add_argument("--out", required=True, help="directory (or .json path) to write tokenizer.json to")
    opts = parser.parse_args(args)

    from litllm.corpus.readers import documents, resolve_files
    from litllm.errors import DataError
    from litllm.model.tokenizer import train_bpe

    files = []
    for src in opts.files:
        resolved = resolve_files(src)
        if resolved is None:
            raise DataError(f"no such file, directory or corpus: {src}")
        files.extend(resolved)
    texts = (doc for src in opts.files for doc in documents(src, opts.text_field))

    tok = train_bpe(
        texts=texts, vocab_size=opts.vocab_size, special_tokens=opts.special_tokens, min_frequency=opts.min_frequency
    )
    path = tok.save(opts.out)
    print(f"Trained a {tok.vocab_size}-token byte-level BPE on {len(files)} file(s); saved {path}")


def presets_main(args: list[str]) -> None:
    import torch

    from litllm.model.config import PRESETS, ModelConfig
    from litllm.model.gpt import GPT

    print(f"{'preset':<14} {'params':>14}  layers  width  heads kv  context  vocab  positions norm      mlp")
    for name in PRESETS:
        config = ModelConfig.from_name(name)
        with torch.device("meta"):
            n = GPT(config).num_parameters()
        print(
            f"{name:<14} {n:>14,}  {config.n_layer:>6} {config.n_embd:>6} {config.n_head:>6} {config.n_kv_head:<3}"
            f"{config.block_size:>7} {config.vocab_size:>6}  {config.position:<9} {config.norm:<9} {config.mlp}"
        )


USAGE = """usage: litllm VERB ...

verbs:
  fit | validate | test     train or evaluate a recipe (LightningCLI): litllm fit --config recipes/pretrain_shakespeare.yaml
  finetune full|lora|qlora  instruction-tune a model directory: litllm finetune lora --config recipes/sft_lora_tiny.yaml
  finetune dpo              align a finetuned model with preference pairs: litllm finetune dpo --config recipes/dpo_lora_tiny.yaml
  tokenizer train           train a byte-level BPE tokenizer on text files
  prepare                   clean, deduplicate and tokenize a corpus into shards: litllm prepare --config recipes/prepare_web.yaml
  presets                   list the model presets with their parameter counts
  evaluate                  loss, perplexity, bits per byte: litllm evaluate --checkpoint DIR --data FILE
  convert from-hf|to-hf     Hugging Face interop: litllm convert from-hf HF_DIR OUT_DIR; litllm convert to-hf DIR HF_DIR
  generate                  generate text from a model directory: litllm generate --checkpoint DIR --prompt "ROMEO:"
  chat                      talk to a model directory (its saved prompt template, /reset, /exit)

`litllm fit --help` lists every option of a run; `--print_config` prints the full resolved recipe.
"""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    verb = args[0] if args else None
    try:
        if verb in LIGHTNING_VERBS:
            run_lightning(argv)  # None: LightningCLI reads sys.argv itself
        elif verb == "finetune":
            finetune_main(args[1:])
        elif verb == "tokenizer":
            tokenizer_main(args[1:])
        elif verb == "prepare":
            from litllm.prepare.cli import prepare_main

            prepare_main(args[1:])
        elif verb == "presets":
            presets_main(args[1:])
        elif verb == "evaluate":
            from litllm.infer.evaluate import evaluate_main

            evaluate_main(args[1:])
        elif verb == "convert":
            from litllm.interop.convert import convert_main

            convert_main(args[1:])
        elif verb == "generate":
            from litllm.infer.textgen import generate_main

            generate_main(args[1:])
        elif verb == "chat":
            from litllm.infer.chat import chat_main

            chat_main(args[1:])
        elif verb in (None, "-h", "--help", "help"):
            print(USAGE)
        else:
            print(f"litllm: unknown verb {verb!r}\n\n{USAGE}", file=sys.stderr)
            sys.exit(2)
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
