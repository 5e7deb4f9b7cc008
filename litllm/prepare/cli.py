"""``litllm prepare``: the command line of the data pipeline (jsonargparse over ``prepare``'s signature).

Every argument of ``litllm.prepare.pipeline.prepare`` is an option; ``--config recipes/prepare_web.yaml``
sets them from a file (the recipe documents each threshold), and ``--print_config`` shows the result.
"""

from __future__ import annotations


def prepare_main(args: list[str]) -> None:
    from jsonargparse import CLI

    from litllm.prepare.pipeline import prepare

    CLI(prepare, args=args, as_positional=False, parser_mode="yaml", prog="litllm prepare", fail_untyped=True)
