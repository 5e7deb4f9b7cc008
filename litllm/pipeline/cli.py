"""``litllm run --config recipes/zero_to_chat.yaml [--stages sft,dpo] [--out_dir DIR] [--dry_run]``."""

from __future__ import annotations

import argparse
import sys

from litllm.pipeline.runner import run_pipeline
from litllm.pipeline.spec import apply_overrides, load_pipeline


def run_main(args: list[str]) -> None:
    """Parse the command line and run the pipeline; exit with the failing stage's code."""
    parser = argparse.ArgumentParser(
        prog="litllm run",
        description="Run a pipeline recipe: every stage a litllm command, finished stages reused, a report card.",
    )
    parser.add_argument("--config", required=True, help="the pipeline recipe (e.g. recipes/zero_to_chat.yaml)")
    parser.add_argument(
        "--stages", default=None, help="comma-separated stages to (re-)run; the others' finished outputs are reused"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STAGE.KEY=VALUE",
        help="override one stage setting, e.g. --set pretrain.data.train_data=corpus/ (repeatable)",
    )
    parser.add_argument("--out_dir", default=None, help="the output root (default: the recipe's out_dir)")
    parser.add_argument("--dry_run", action="store_true", help="print each stage's commands without running them")
    opts = parser.parse_args(args)
    pipeline = load_pipeline(opts.config, opts.out_dir)
    apply_overrides(pipeline, opts.set)
    only = [s.strip() for s in opts.stages.split(",") if s.strip()] if opts.stages else None
    code = run_pipeline(pipeline, only, opts.dry_run)
    if code:
        sys.exit(code)
