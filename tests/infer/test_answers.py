"""Fixed prompts answered greedily: reading prompt files, checking answers, and `litllm evaluate --prompts`."""

from __future__ import annotations

import json

import pytest
import torch

from litllm.cli import main
from litllm.errors import DataError
from litllm.infer.answers import Prompt, answer_prompts, read_prompts, render, word_share
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.templates import get_template


def test_prompt_files_take_strings_and_objects(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(["Hi", {"instruction": "Add", "input": "2+2", "expect": "4"}, {"prompt": "x", "expect": ["a", "b"]}])
    )
    assert read_prompts(path) == [Prompt("Hi"), Prompt("Add", "2+2", ("4",)), Prompt("x", "", ("a", "b"))]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1]", "item 0: expected a string or an object"),
        ('[{"instrucion": "x"}]', "unknown key(s) ['instrucion']"),
        ('{"a": 1}', "expected a JSON list"),
        ("[", "not valid JSON (line 1"),
    ],
)
def test_a_bad_prompt_file_names_the_file_and_item(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(DataError, match=__import__("re").escape(message)):
        read_prompts(path)


def test_word_share_tells_words_from_token_soup():
    assert word_share("The capital of France is Paris.") == 1.0
    assert word_share("It's 8, well-known!") == 1.0
    assert word_share("thCap ofitalinesj ,,;' xq9z") == 0.0
    assert word_share("Paris is nice", frozenset({"paris", "is"})) == pytest.approx(2 / 3)
    assert word_share("") == 0.0


def test_templates_frame_the_prompt_and_plain_models_continue_the_text():
    text, stop = render(Prompt("Name a color."), get_template("alpaca"))
    assert text.endswith("### Instruction:\nName a color.\n\n### Response:\n") and stop
    assert render(Prompt("Name a color.", "red or blue"), None) == ("Name a color.\nred or blue\n", ("\n\n",))


def test_answers_are_greedy_and_checked(small_tokenizer):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    prompts = [Prompt("ROMEO:", expect=("zzzz-never",)), Prompt("JULIET:")]
    first = answer_prompts(model, small_tokenizer, None, prompts, max_new_tokens=8)
    again = answer_prompts(model, small_tokenizer, None, prompts, max_new_tokens=8)
    assert [a.answer for a in first] == [a.answer for a in again]  # greedy: the same every time
    assert first[0].correct is False and first[1].correct is None


def test_evaluate_prompts_writes_answers_and_scores(tmp_path, small_tokenizer, capsys):
    torch.manual_seed(0)
    model_dir = ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"instruction": "Say hi", "expect": "hi"}, "ROMEO:"]))
    out = tmp_path / "r.json"
    main(
        [
            "evaluate",
            "--model_dir",
            str(model_dir),
            "--prompts",
            str(prompts),
            "--max_new_tokens",
            "4",
            "--output",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert result["checked"] == 1 and len(result["answers"]) == 2 and "data" not in result
    assert "answers hold the expected text" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["evaluate", "--model_dir", str(model_dir)])  # neither --data nor --prompts
    assert "give --data" in capsys.readouterr().err
