"""The lm-eval harness adapter, on a local multiple-choice task (no network)."""

from __future__ import annotations

import json
import math

import lm_eval  # noqa: E402, F401  (a dev dependency: CI installs it, so this test always runs)
import pytest
import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance  # noqa: E402

from litllm.interop.lm_eval_adapter import LitLLMEvalModel, run_tasks  # noqa: E402
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

QUESTIONS = [
    {
        "question": "ROMEO: O, she doth teach the torches to burn",
        "choices": [" bright!", " slowly.", " fish"],
        "answer": 0,
    },
    {"question": "JULIET: Good night, good night! Parting is such sweet", "choices": [" sorrow", " cake"], "answer": 0},
    {"question": "HAMLET: To be, or not to", "choices": [" swim", " be"], "answer": 1},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_tokenizer):
    torch.manual_seed(0)
    return ModelDir(tmp_path_factory.mktemp("m")).save(GPT(ModelConfig.from_name("tiny-llama")), small_tokenizer).path


def request(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


def test_loglikelihood_is_the_sum_of_continuation_log_probs(model_dir, small_tokenizer):
    lm = LitLLMEvalModel(str(model_dir))
    (logprob, greedy), (empty_context, _) = lm.loglikelihood(
        [request("loglikelihood", "ROMEO: hello", " there"), request("loglikelihood", "", "ROMEO")]
    )
    ctx, cont = small_tokenizer.encode("ROMEO: hello"), small_tokenizer.encode(" there")
    assert ctx + cont == small_tokenizer.encode("ROMEO: hello there")
    with torch.no_grad():
        logits = lm.model(torch.tensor([ctx + cont[:-1]]))[0, len(ctx) - 1 :]
    expected = -F.cross_entropy(logits, torch.tensor(cont), reduction="sum").item()
    assert logprob == pytest.approx(expected, rel=1e-5)
    assert greedy == bool((logits.argmax(-1) == torch.tensor(cont)).all())
    assert empty_context < 0 and math.isfinite(empty_context)


def test_rolling_and_generation_requests(model_dir):
    lm = LitLLMEvalModel(str(model_dir))
    (rolling,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", "To be, or not to be")])
    ((whole, _),) = lm.loglikelihood([request("loglikelihood", "", "To be, or not to be")])
    assert rolling == pytest.approx(whole, rel=1e-5)  # short text: one window, same context
    (text,) = lm.generate_until([request("generate_until", "ROMEO:", {"until": ["\n"], "max_gen_toks": 8})])
    assert "\n" not in text


def test_harness_runs_a_local_task(tmp_path, model_dir):
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_mc.yaml").write_text(
        "task: litllm_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n"
    )
    results = run_tasks(
        str(model_dir),
        ["litllm_tiny_mc"],
        include_path=str(tmp_path / "tasks"),
        bootstrap_iters=0,
        include_defaults=False,
    )
    acc = results["litllm_tiny_mc"]["acc,none"]
    # the harness's accuracy is what the adapter's own log-likelihoods pick
    lm = LitLLMEvalModel(str(model_dir))
    right = 0
    for q in QUESTIONS:
        scores = lm.loglikelihood([request("loglikelihood", q["question"], c) for c in q["choices"]])
        right += max(range(len(scores)), key=lambda i: scores[i][0]) == q["answer"]
    assert acc == pytest.approx(right / len(QUESTIONS))
