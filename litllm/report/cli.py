"""``litllm report DIR``: rebuild the report card of a ``litllm run`` root or of one ``litllm fit`` directory."""

from __future__ import annotations

import argparse

from litllm.report.build import write_report


def report_main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="litllm report", description="Write DIR/report.md and DIR/report.html.")
    parser.add_argument("directory", help="a litllm run output root, or the default_root_dir of a fit/finetune run")
    opts = parser.parse_args(args)
    path = write_report(opts.directory)
    print(f"Report card written: {path} and {path.with_suffix('.html')}")
