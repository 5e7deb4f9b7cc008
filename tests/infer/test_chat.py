import io

import pytest
import torch

import litllm.infer.chat as chat
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Alpaca


@pytest.fixture
def model_dir(tmp_path, small_tokenizer):
    torch.manual_seed(0)
    return ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-llama")), small_tokenizer).path


@pytest.fixture
def prompts(monkeypatch):
    """Record the prompt of every turn while still generating for real."""
    seen: list[str] = []
    real = chat.stream_text

    def spy(model, tokenizer, prompt, **kwargs):
        seen.append(prompt)
        return real(model, tokenizer, prompt, **kwargs)

    monkeypatch.setattr(chat, "stream_text", spy)
    return seen


def run(model_dir, text: str, *extra: str) -> str:
    out = io.StringIO()
    args = ["--model_dir", str(model_dir), "--temperature", "0", "--max_new_tokens", "6", *extra]
    chat.chat_main(args, stdin=io.StringIO(text), stdout=out)
    return out.getvalue()


def test_chat_with_a_saved_template_keeps_the_history_and_resets(model_dir, prompts):
    ModelDir(model_dir).save_template(Alpaca())
    out = run(model_dir, "Name a colour.\nAnother one?\n/reset\nName a colour.\n/exit\nnever read\n")
    assert "template 'alpaca'" in out and "(conversation reset)" in out
    first, second, after_reset = prompts
    assert first == Alpaca().prompt([{"role": "user", "content": "Name a colour."}])
    # the second turn carries the first question and the model's answer
    assert second.startswith(first) and second.endswith("### Instruction:\nAnother one?\n\n### Response:\n")
    assert after_reset == first
    assert len(prompts) == 3  # nothing after /exit


def test_a_mistyped_command_is_named_not_sent_and_quit_quits(model_dir, prompts):
    out = run(model_dir, "/rest\nROMEO:\n/quit\nnever read\n")
    assert "(unknown command /rest: /reset starts over, /exit quits)" in out
    assert prompts == ["ROMEO:"]  # neither the mistyped command nor anything after /quit reached the model


def test_chat_without_a_template_continues_the_text(model_dir, prompts):
    out = run(model_dir, "ROMEO:\nJULIET:\n")  # ends without /exit: end of input quits
    assert "plain continuation" in out
    first, second = prompts
    assert first == "ROMEO:"
    reply = second[len("ROMEO:") : -len("\nJULIET:")]
    assert second == "ROMEO:" + reply + "\nJULIET:" and reply  # the model's words stay in the context
    assert reply in out


def test_chat_replies_are_the_same_as_generate_for_the_same_prompt(model_dir, prompts):
    from litllm.infer.textgen import load_for_inference, stream_text

    out = run(model_dir, "ROMEO:\n/exit\n")
    model, tok = load_for_inference(str(model_dir))
    assert stream_text(model, tok, "ROMEO:", max_new_tokens=6, temperature=0) in out
