import pytest
import torch

from litllm.errors import DataError
from litllm.infer.generate import generate
from litllm.infer.textgen import TextStream, read_prompts, stream_text
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT


def push_all(stream: TextStream, ids: list[int]) -> str:
    out = ""
    for i in ids:
        out += stream.push(i)
        if stream.stopped:
            break
    return out + stream.finish()


def test_stream_reproduces_the_decoded_text(small_tokenizer):
    text = "ROMEO:\nBut soft, what light through yonder window breaks? é ü"
    ids = small_tokenizer.encode(text)
    stream = TextStream(small_tokenizer)
    pieces = [stream.push(i) for i in ids]
    assert "".join(pieces) + stream.finish() == text
    assert not any("\ufffd" in p for p in pieces)  # split multi-byte characters are held back, not printed broken


def test_stream_stops_at_a_stop_string_without_printing_it(small_tokenizer):
    ids = small_tokenizer.encode("First line.\nSTOP here, and more after")
    stream = TextStream(small_tokenizer, stop=["\nSTOP"])
    printed = []
    for i in ids:
        printed.append(stream.push(i))
        if stream.stopped:
            break
    assert stream.stopped
    assert "".join(printed) + stream.finish() == "First line."
    assert all("\n" not in p for p in printed)  # the stop's first character was held back, not printed


def test_stream_stops_at_end_of_text_and_single_token_stops(small_tokenizer):
    ids = small_tokenizer.encode("Hello") + [small_tokenizer.eot_id] + small_tokenizer.encode(" more")
    assert push_all(TextStream(small_tokenizer), ids) == "Hello"
    # a stop string that is one token is matched by its id
    assert push_all(TextStream(small_tokenizer, stop=["<|endoftext|>"]), ids) == "Hello"


def test_stream_text_greedy_is_reproducible_and_streams(small_tokenizer):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    pieces: list[str] = []
    text = stream_text(model, small_tokenizer, "ROMEO:", max_new_tokens=12, temperature=0, write=pieces.append)
    assert text == "".join(pieces) and len(pieces) > 1
    assert text == stream_text(model, small_tokenizer, "ROMEO:", max_new_tokens=12, temperature=0)
    ids = small_tokenizer.encode("ROMEO:")
    with torch.no_grad():
        expected = model(torch.tensor([ids]))[0, -1].argmax().item()
    assert text.startswith(small_tokenizer.decode([expected]))


def test_stream_text_in_context_keeps_the_prompt_and_cuts_the_reply_with_a_warning(small_tokenizer):
    # chat's case: more new tokens asked (256) than the context leaves after the prompt
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=48)).eval()
    prompt = "ROMEO: But soft, what light through yonder window breaks? It is the east"
    ids = small_tokenizer.encode(prompt)
    assert 24 < len(ids) < 48
    room = 48 - len(ids)
    with pytest.warns(UserWarning, match=f"reply cut at {room} tokens: the model's context of 48 tokens is full"):
        text = stream_text(model, small_tokenizer, prompt, max_new_tokens=256, temperature=0, stay_in_context=True)
    expected = generate(model, torch.tensor([ids]), room, temperature=0)[0, len(ids) :].tolist()
    assert text == small_tokenizer.decode(expected)


def test_read_prompts(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("ROMEO:\n\nJULIET:\\nO Romeo\n")
    assert read_prompts(str(path)) == ["ROMEO:", "JULIET:\nO Romeo"]
    with pytest.raises(DataError, match="not found"):
        read_prompts(str(tmp_path / "missing.txt"))


def test_model_dir_option_keeps_its_old_name(capsys):
    import argparse

    from litllm import _moved
    from litllm.infer.textgen import add_model_dir_arg

    parser = argparse.ArgumentParser()
    add_model_dir_arg(parser)
    assert parser.parse_args(["--model_dir", "a"]).model_dir == "a"
    assert capsys.readouterr().err == ""
    _moved._warned.discard("--checkpoint")
    assert parser.parse_args(["--checkpoint", "b"]).model_dir == "b"
    assert capsys.readouterr().err.strip() == "litllm: --checkpoint is now --model_dir (the old name still works)"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("max_new_tokens", -1, "--max_new_tokens -1 is out of range: it must be at least 1"),
        ("temperature", -1.0, r"--temperature -1.0 is out of range: it must be 0 \(greedy\) or more"),
        ("top_p", 2.0, r"--top_p 2.0 is out of range: it must be in \(0, 1\]"),
        ("top_k", -5, "--top_k -5 is out of range"),
    ],
)
def test_sampling_arguments_are_checked(flag, value, message):
    import argparse

    from litllm.errors import ConfigError
    from litllm.infer.textgen import sampling_kwargs

    opts = argparse.Namespace(max_new_tokens=10, temperature=0.8, top_k=50, top_p=1.0)
    setattr(opts, flag, value)
    with pytest.raises(ConfigError, match=message):
        sampling_kwargs(opts)


def test_make_room_crops_the_prompt_to_leave_the_reply_its_tokens(small_tokenizer):
    # lm-eval's way: the context gives up its oldest tokens so that max_gen_toks fit
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=48)).eval()
    prompt = "ROMEO: But soft, what light through yonder window breaks? It is the east"
    ids = small_tokenizer.encode(prompt)
    with pytest.warns(
        UserWarning, match=f"prompt of {len(ids)} tokens \\+ 20 new tokens exceed .* keeping the last 28"
    ):
        text = stream_text(
            model, small_tokenizer, prompt, max_new_tokens=20, temperature=0, stay_in_context=True, make_room=True
        )
    expected = generate(model, torch.tensor([ids[-28:]]), 20, temperature=0)[0, 28:].tolist()
    assert text == small_tokenizer.decode(expected)
