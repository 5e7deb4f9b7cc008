"""``litllm serve --model_dir DIR``: load a model directory and answer OpenAI-style requests over HTTP."""

from __future__ import annotations

import argparse
import os

from litllm.errors import ConfigError
from litllm.infer.textgen import add_inference_args, add_model_dir_arg, inference_kwargs, load_for_inference
from litllm.model.model_dir import ModelDir


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="litllm serve",
        description="Serve a model directory over an OpenAI-compatible HTTP API (/v1/chat/completions, "
        "/v1/completions, /v1/models), with a chat page at /.",
    )
    add_model_dir_arg(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api_key",
        default=os.environ.get("LITLLM_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every request (default: $LITLLM_API_KEY, else none)",
    )
    parser.add_argument("--max_batch", type=int, default=8, help="most sequences decoded together; more wait")
    parser.add_argument(
        "--model_name",
        default=None,
        help="the model's name in the API (default: the directory's; the run's for a run's final/)",
    )
    add_inference_args(parser)
    parser.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    opts = parser.parse_args(args)
    if opts.max_batch < 1:
        raise ConfigError(f"--max_batch {opts.max_batch} is out of range: it must be at least 1")
    if not 0 <= opts.port <= 65535:
        raise ConfigError(f"--port {opts.port} is out of range: it must be in [0, 65535]")
    return opts


def default_name(model_dir: str) -> str:
    """The directory's name; for a run's ``final/``, the run's (``out/sft_full_tiny/final`` -> ``sft_full_tiny``)."""
    path = ModelDir(model_dir).path.resolve()
    return path.parent.name if path.name == "final" and path.parent.name else path.name


def serve_main(args: list[str]) -> None:
    """Load the model, start the batching engine and run the HTTP server until interrupted."""
    opts = parse_args(args)
    try:  # imported here so that `litllm serve --help` and argument errors answer at once
        import uvicorn

        from litllm.serve.app import create_app
    except ImportError as err:
        raise ConfigError(f'litllm serve needs FastAPI and uvicorn ({err}): pip install -e ".[serve]"') from None
    from litllm.serve.engine import Engine

    model, tokenizer = load_for_inference(opts.model_dir, **inference_kwargs(opts))
    template = ModelDir(opts.model_dir).template()
    name = opts.model_name or default_name(opts.model_dir)
    engine = Engine(model, tokenizer, max_batch=opts.max_batch)
    app = create_app(engine, name, template, opts.api_key)
    mode = f"template {template.name!r}" if template else "no template: chat continues the text"
    print(
        f"litllm serve: model {name!r} ({mode}, context {engine.context}, up to {opts.max_batch} sequences at once) "
        f"on http://{opts.host}:{opts.port}" + (" (API key required)" if opts.api_key else ""),
        flush=True,
    )
    uvicorn.run(app, host=opts.host, port=opts.port, log_level=opts.log_level, timeout_graceful_shutdown=5)
