"""EleutherAI's lm-evaluation-harness on a litllm model directory (``pip install litllm[lm_eval]``).

Importing this module registers the model type ``litllm`` with the harness. From Python::

    import lm_eval
    from litllm.interop.lm_eval_adapter import LitLLMEvalModel
    lm_eval.simple_evaluate(model=LitLLMEvalModel("out/shakespeare/final"), tasks=["hellaswag"])

or from the shell, ``python -m litllm.interop.lm_eval_adapter --model_dir DIR --tasks hellaswag [--include_path
my_tasks/] [--limit 100]``.

The three request types map onto litllm's own code: ``loglikelihood`` scores a continuation in one
forward pass, ``loglikelihood_rolling`` is ``litllm.infer.evaluate`` on the text, ``generate_until`` is
``litllm.infer.textgen.stream_text`` with the request's stop strings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError as err:  # an optional extra
    raise ImportError("the lm-eval adapter needs the harness: pip install 'litllm[lm-eval]'") from err

from litllm._moved import warn_renamed
from litllm.infer.evaluate import evaluate_tokens
from litllm.infer.textgen import add_model_dir_arg, load_for_inference, stream_text


@register_model("litllm")
class LitLLMEvalModel(LM):
    """A litllm model directory as an lm-eval ``LM``."""

    def __init__(
        self,
        model_dir: str | None = None,
        device: str | None = None,
        dtype: str = "float32",
        quantize: str | None = None,
        batch_size: int | str = 1,
        max_gen_toks: int = 256,
        checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        if checkpoint is not None:
            warn_renamed("checkpoint", "model_dir")
            model_dir = model_dir or checkpoint
        if model_dir is None:
            raise TypeError("LitLLMEvalModel needs model_dir, the model directory to evaluate")
        self.model, self.tokenizer = load_for_inference(model_dir, device, dtype, quantize)
        self._device = next(self.model.parameters()).device
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1
        self.max_gen_toks = int(max_gen_toks)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> LitLLMEvalModel:
        """``--model_args model_dir=DIR,dtype=bfloat16``; the harness's ``batch_size``/``device`` pass through."""
        kwargs = dict(pair.split("=", 1) for pair in arg_string.split(",") if pair)
        for key, value in (additional_config or {}).items():
            if value is not None and key in ("batch_size", "device"):
                kwargs.setdefault(key, value)
        return cls(**kwargs)

    # ------------------------------------------------------------------ requests
    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of context and continuation, split as the joint text tokenizes.

        A space at the end of the context belongs to the next word in BPE, so it moves to the
        continuation; an empty context starts from end-of-text.
        """
        stripped = context.rstrip(" ")
        continuation = context[len(stripped) :] + continuation
        context_ids = self.tokenizer.encode(stripped) if stripped else [self.tokenizer.eot_id]
        whole = self.tokenizer.encode(stripped + continuation) if stripped else None
        if whole is not None and whole[: len(context_ids)] == context_ids:
            return context_ids, whole[len(context_ids) :]
        return context_ids, self.tokenizer.encode(continuation)

    @torch.inference_mode()
    def _score(self, context_ids: list[int], continuation_ids: list[int]) -> tuple[float, bool]:
        """Log-probability of the continuation after the context, and whether greedy decoding would produce it."""
        ids = (context_ids + continuation_ids)[-(self.model.config.block_size + 1) :]
        n = len(continuation_ids)
        x = torch.tensor([ids[:-1]], device=self._device)
        logits = self.model(x)[0, -n:].float()
        target = torch.tensor(continuation_ids[-n:], device=self._device)
        logprob = -F.cross_entropy(logits, target, reduction="sum").item()
        return logprob, bool((logits.argmax(-1) == target).all())

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        return [self._score(*self._split(*request.args)) for request in requests]

    def loglikelihood_rolling(self, requests) -> list[float]:
        out = []
        for request in requests:
            (text,) = request.args[:1]
            ids = [self.tokenizer.eot_id, *self.tokenizer.encode(text)]
            results = evaluate_tokens(self.model, ids, len(text.encode("utf-8")), self.batch_size)
            out.append(-results["loss"] * results["tokens"])
        return out

    def generate_until(self, requests) -> list[str]:
        out = []
        for request in requests:
            context, kwargs = request.args[0], dict(request.args[1])
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            temperature = float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample", False) else 0.0
            text = stream_text(
                self.model,
                self.tokenizer,
                context,
                max_new_tokens=int(kwargs.get("max_gen_toks", self.max_gen_toks)),
                temperature=temperature,
                top_k=None,
                stop=until,
                stay_in_context=True,
                make_room=True,
            )
            out.append(text)
        return out


def main(args: list[str] | None = None) -> None:
    """``python -m litllm.interop.lm_eval_adapter --model_dir DIR --tasks a,b``: run harness tasks, print and save results."""
    parser = argparse.ArgumentParser(description="Evaluate a litllm model directory with lm-evaluation-harness.")
    add_model_dir_arg(parser)
    parser.add_argument("--tasks", required=True, help="comma-separated harness task names")
    parser.add_argument("--include_path", default=None, help="a folder of extra task YAML files")
    parser.add_argument("--only_included", action="store_true", help="index only the tasks in --include_path")
    parser.add_argument("--num_fewshot", type=int, default=None)
    parser.add_argument("--limit", type=float, default=None, help="examples per task (a fraction if < 1)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--output", default=None, help="write the results to this JSON file")
    opts = parser.parse_args(args)
    results = run_tasks(
        opts.model_dir,
        opts.tasks.split(","),
        include_path=opts.include_path,
        include_defaults=not opts.only_included,
        num_fewshot=opts.num_fewshot,
        limit=opts.limit,
        batch_size=opts.batch_size,
        device=opts.device,
        dtype=opts.dtype,
    )
    for task, metrics in results.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"{task}: {shown}")
    if opts.output:
        Path(opts.output).write_text(json.dumps(results, indent=2, default=str) + "\n")


def run_tasks(
    model_dir: str,
    tasks: list[str],
    include_path: str | None = None,
    num_fewshot: int | None = None,
    limit: float | None = None,
    bootstrap_iters: int = 100000,
    include_defaults: bool = True,
    **model_kwargs,
) -> dict[str, dict]:
    """Run harness ``tasks`` on a model directory; return ``{task: {metric: value}}``.

    ``bootstrap_iters=0`` skips the bootstrapped standard errors (much faster on small runs);
    ``include_defaults=False`` indexes only the tasks under ``include_path`` (indexing the harness's
    own thousands of tasks takes ~15 s).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=include_defaults)
    out = lm_eval.simple_evaluate(
        model=LitLLMEvalModel(model_dir, **model_kwargs),
        tasks=tasks,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=manager,
        log_samples=False,
        bootstrap_iters=bootstrap_iters,
    )
    return out["results"]


if __name__ == "__main__":
    main()
