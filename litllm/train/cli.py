"""The training verbs: ``litllm fit|validate|test`` (LightningCLI) and ``litllm finetune full|lora|qlora|dpo``.

``sys.argv`` is never rewritten: Lightning's DDP launcher re-executes the same command line in
every child process, so each verb parses the arguments it was given.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from litllm.train.resume import exit_if_interrupted, load_checkpoint, nonzero_exit_when_stopped, resolve_ckpt_path


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    from litllm.parallel.names import check_strategy_name

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
            init_from = model_args.get("init_from") or model_args.get("checkpoint")
            if data_args.get("mode", "text") != "text" and data_args.get("tokenizer") is None and init_from:
                data_args["tokenizer"] = init_from  # the data module reads the directory's tokenizer and template
            trainer = cfg.trainer
            if isinstance(trainer.strategy, str):  # one line for an unknown name, not Lightning's paragraph
                check_strategy_name(trainer.strategy)
            root = trainer.default_root_dir or "out"
            trainer.default_root_dir = root
            if trainer.logger is None or trainer.logger is True:
                trainer.logger = {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": root, "name": "logs"},
                }
            callbacks = trainer.callbacks = list(trainer.callbacks or [])
            for callback in callbacks:
                class_path = getattr(callback, "class_path", "")
                if class_path.endswith("ModelCheckpoint") and callback.init_args.get("dirpath") is None:
                    callback.init_args["dirpath"] = os.path.join(root, "checkpoints")
            if not any(getattr(c, "class_path", "").endswith("OnExceptionCheckpoint") for c in callbacks):
                # Ctrl-C, SIGTERM (SLURM, pre-emption) or a crash: a checkpoint of the last completed step,
                # which --ckpt_path last picks up when it is newer than last.ckpt.
                callbacks.append(
                    {
                        "class_path": "litllm.train.resume.InterruptCheckpoint",
                        "init_args": {"dirpath": os.path.join(root, "checkpoints")},
                    }
                )

        def _parse_ckpt_path(self) -> None:
            # For fit, LightningCLI would replace the recipe's and the command line's model settings by
            # those saved in the checkpoint, silently; litllm keeps the run's and compares them in
            # resolve_ckpt_path. validate/test still build the model the checkpoint was trained as.
            subcommand = self.config.get("subcommand")
            if subcommand is None or subcommand == "fit":
                return
            path = self.config[subcommand].get("ckpt_path")
            if path and Path(path).is_file():
                load_checkpoint(Path(path))  # one clear line for an unsafe or truncated file
            super()._parse_ckpt_path()

        def before_fit(self) -> None:
            check_strategy_support(self.model, self.trainer, self.datamodule)
            config = self.config_init[self.subcommand]
            config["ckpt_path"] = resolve_ckpt_path(self.trainer, config.get("ckpt_path"), self.model)

    return LitLLMCLI


def check_strategy_support(model, trainer, datamodule) -> None:
    """One ``ConfigError`` line when the strategy cannot train this model (QLoRA sharded, a pipeline's limits).

    Called before ``trainer.fit`` starts the other processes: one line, not one per process.
    """
    from litllm.train.distributed import check_sharding_support
    from litllm.train.pipelined import check_pipeline_support

    check_sharding_support(getattr(model.hparams, "method", None), trainer.strategy)
    check_pipeline_support(model, trainer, getattr(datamodule, "batch_size", None))


FINETUNE_METHODS = ("full", "lora", "qlora", "dpo")
DEFAULT_RECIPES = {
    "full": "sft_full_tiny.yaml",
    "lora": "sft_lora_tiny.yaml",
    "qlora": "sft_qlora_tiny.yaml",
    "dpo": "dpo_lora_tiny.yaml",
}
"""The recipe a bare ``litllm finetune METHOD`` runs: the CPU recipe that starts from the Shakespeare model."""


def recipes_dir() -> Path:
    """``recipes/`` of the source tree this package runs from (an editable install or a clone)."""
    return Path(__file__).resolve().parents[2] / "recipes"


def default_recipe_args(method: str, args: list[str]) -> list[str]:
    """``args`` with ``--config`` of the method's default recipe in front when no recipe is given (said once)."""
    if any(a == "--config" or a.startswith("--config=") for a in args):
        return args
    recipe = recipes_dir() / DEFAULT_RECIPES[method]
    if not recipe.is_file():
        from litllm.errors import ConfigError

        raise ConfigError(
            f"no --config given and the built-in recipes are not beside this installation ({recipe}); "
            f"pass --config path/to/recipe.yaml (the repository's recipes/{DEFAULT_RECIPES[method]} is the default)"
        )
    shown = recipe.relative_to(Path.cwd()) if recipe.is_relative_to(Path.cwd()) else recipe
    print(f"litllm finetune {method}: no --config given; using {shown}", file=sys.stderr, flush=True)
    return ["--config", str(recipe), *args]


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
    method, rest = args[0], default_recipe_args(args[0], list(args[1:]))
    if method != "dpo":
        rest = [*rest, "--model.init_args.method", method]  # the verb decides, whatever the recipe says
    with one_line_config_errors():
        cli = run_lightning(rest, run=False)
        check_strategy_support(cli.model, cli.trainer, cli.datamodule)
    ckpt_path = resolve_ckpt_path(cli.trainer, cli.config.get("ckpt_path"), cli.model)
    with nonzero_exit_when_stopped():
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    exit_if_interrupted(cli.trainer)


def run_lightning(args: list[str] | None = None, run: bool = True):
    """Run a LightningCLI subcommand with litllm's defaults; ``args`` None reads ``sys.argv``."""
    from litllm.data import LLMDataModule
    from litllm.parallel import register_strategies
    from litllm.train import LLMModule

    register_strategies()  # --trainer.strategy fsdp2 | tp2 | tp4 | tp8 | mesh
    # `litllm finetune` hands LightningCLI the arguments after the method; Lightning warns that they
    # differ from sys.argv, which is intended here.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cls = _cli_class()
    cls.subcommand_mode = run
    return cls(
        LLMModule,
        LLMDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=1337,
        save_config_kwargs={"overwrite": True},
        # Raise instead of printing the whole usage: litllm prints one line (see config_errors).
        parser_kwargs={
            "default_env": False,
            "exit_on_error": False,
            **{v: {"exit_on_error": False} for v in ("fit", "validate", "test", "predict")},
        },
        args=args,
        run=run,
    )


@contextmanager
def one_line_config_errors():
    """A parser error (unknown key, wrong type, missing recipe) becomes one ``ConfigError`` line."""
    try:
        yield
    except argparse.ArgumentError as err:
        from litllm.train.config_errors import config_error

        raise config_error(str(err)) from None


def lightning_main(argv: list[str] | None = None) -> None:
    """``litllm fit|validate|test ...``: ``argv`` is the whole command after ``litllm`` (None: ``sys.argv``)."""
    with nonzero_exit_when_stopped(), one_line_config_errors():
        cli = run_lightning(argv)
    exit_if_interrupted(cli.trainer)
