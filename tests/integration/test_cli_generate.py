"""`litllm generate` and `litllm chat` end to end on a tiny model directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from litllm.cli import main
from litllm.infer.textgen import load_for_inference, stream_text
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

pytestmark = pytest.mark.integration


@pytest.fixture
def model_dir(tmp_path, small_tokenizer):
    torch.manual_seed(0)
    return ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer).path


def gen(capsys, model_dir, *args: str) -> str:
    main(["generate", "--model_dir", str(model_dir), "--max_new_tokens", "20", *args])
    return capsys.readouterr().out


def test_generate_greedy_prints_the_prompt_and_its_continuation(capsys, model_dir):
    out = gen(capsys, model_dir, "--prompt", "ROMEO:", "--temperature", "0")
    model, tok = load_for_inference(str(model_dir))
    assert out == "ROMEO:" + stream_text(model, tok, "ROMEO:", max_new_tokens=20, temperature=0) + "\n"


def test_generate_sampling_follows_the_seed(capsys, model_dir):
    args = ("--prompt", "ROMEO:", "--temperature", "1.0", "--top_k", "0")
    a, b = gen(capsys, model_dir, *args, "--seed", "1"), gen(capsys, model_dir, *args, "--seed", "1")
    c = gen(capsys, model_dir, *args, "--seed", "2")
    assert a == b and a != c


def test_generate_stop_string_and_prompts_file(capsys, tmp_path, model_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\nJULIET:\n")
    records = tmp_path / "out.jsonl"
    out = gen(capsys, model_dir, "--prompts_file", str(prompts), "--temperature", "0", "--output", str(records))
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["ROMEO:", "JULIET:"]
    assert out == "ROMEO:" + rows[0]["completion"] + "\n\nJULIET:" + rows[1]["completion"] + "\n"
    # stop at the third character of the first completion: only the two before it are printed
    full = rows[0]["completion"]
    stop = full[2:4]
    cut = full[: full.index(stop)]
    out = gen(capsys, model_dir, "--prompt", "ROMEO:", "--temperature", "0", "--stop", stop)
    assert out == "ROMEO:" + cut + "\n"


def test_generate_names_a_missing_model_file(capsys, model_dir):
    (model_dir / "config.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model_dir", str(model_dir), "--prompt", "x"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing config.json" in err


def test_chat_reads_piped_stdin(model_dir):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litllm.cli",
            "chat",
            "--model_dir",
            str(model_dir),
            "--temperature",
            "0",
            "--max_new_tokens",
            "20",
        ],
        input="ROMEO:\n/reset\n/exit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "plain continuation" in result.stdout and "(conversation reset)" in result.stdout
    model, tok = load_for_inference(str(model_dir))
    assert stream_text(model, tok, "ROMEO:", max_new_tokens=20, temperature=0) in result.stdout


def test_generate_warns_in_one_line_when_the_prompt_is_cropped(capsys, model_dir, shakespeare_path):
    long_prompt = shakespeare_path.read_text()[:2000]  # far more than the 64-token context
    main(["generate", "--model_dir", str(model_dir), "--prompt", long_prompt, "--max_new_tokens", "5"])
    err = capsys.readouterr().err
    assert err.startswith("litllm: warning: prompt of") and "keeping the last" in err and err.count("\n") == 1
