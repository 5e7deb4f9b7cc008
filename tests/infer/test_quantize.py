"""bfloat16 and int8 weight-only inference against float32, on a model trained for a few dozen steps.

Random tiny models have near-flat logits where any rounding flips the greedy choice, so the model
here is trained first (40 AdamW steps on the built-in Shakespeare corpus). The quality bar: held-out
perplexity within 1% of float32's, and the first 16 greedy tokens the same as float32's.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litllm.errors import ConfigError
from litllm.infer.evaluate import evaluate_tokens
from litllm.infer.generate import generate
from litllm.infer.quantize import Int8Linear, linear_weight_bytes, quantize_model
from litllm.infer.textgen import generate_main, load_for_inference
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

PROMPTS = ["ROMEO:\n", "First Citizen:\nWe are", "KING RICHARD III:\nNow is the"]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, small_tokenizer, shakespeare_path):
    """A tiny GPT-2-style model trained for 40 steps, saved as a model directory; and held-out token ids."""
    torch.manual_seed(0)
    text = shakespeare_path.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train = torch.tensor(small_tokenizer.encode(text[:200_000]))
    held_out = small_tokenizer.encode(text[cut : cut + 12_000])
    model = GPT(ModelConfig.from_name("tiny-gpt2"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        starts = torch.randint(0, len(train) - 65, (16,))
        batch = torch.stack([train[s : s + 65] for s in starts])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = ModelDir(tmp_path_factory.mktemp("trained") / "model").save(model.eval(), small_tokenizer).path
    return path, held_out


def greedy(model: GPT, tokenizer, prompt: str, n: int = 16) -> list[int]:
    ids = torch.tensor([tokenizer.encode(prompt)])
    return generate(model, ids, n, temperature=0)[0, ids.size(1) :].tolist()


@pytest.mark.parametrize(("dtype", "quantize"), [("bfloat16", None), ("float32", "int8"), ("bfloat16", "int8")])
def test_bf16_and_int8_match_float32(trained_dir, dtype, quantize):
    path, held_out = trained_dir
    reference, tokenizer = load_for_inference(str(path), "cpu", "float32")
    model, _ = load_for_inference(str(path), "cpu", dtype, quantize)
    ref_ppl = evaluate_tokens(reference, held_out, n_bytes=1)["perplexity"]
    ppl = evaluate_tokens(model, held_out, n_bytes=1)["perplexity"]
    assert ref_ppl < 256, ref_ppl  # trained: under half the 512 of a uniform guess
    assert ppl == pytest.approx(ref_ppl, rel=0.01)
    for prompt in PROMPTS:
        assert greedy(model, tokenizer, prompt) == greedy(reference, tokenizer, prompt), prompt


def test_int8_stores_a_quarter_of_the_linear_weights_and_keeps_the_rest():
    model = GPT(ModelConfig.from_name("tiny-llama")).eval()
    before = linear_weight_bytes(model)
    embedding = model.wte.weight.clone()
    quantize_model(model, "int8")
    # int8 data (a quarter of float32) plus one float32 scale per output row
    layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert layers and not any(type(m) is torch.nn.Linear for m in model.modules())
    assert linear_weight_bytes(model) == before // 4 + 4 * sum(m.out_features for m in layers)
    assert model.wte.weight.dtype == torch.float32 and torch.equal(model.wte.weight, embedding)
    assert quantize_model(model, None) is model
    with pytest.raises(ConfigError, match="int4"):
        quantize_model(model, "int4")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_is_the_dequantized_product_through_the_kernel(dtype, bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 40, bias=bias).to(dtype)
    layer = Int8Linear(linear)
    dequantized = layer.weight_int8.float() * layer.scale.float()[:, None]
    # per row, rounding to 255 levels: within half a step (a row's largest value, clamped, within a step)
    error = (dequantized - linear.weight.detach().float()).abs()
    assert bool((error <= layer.scale.float()[:, None] * 0.51).all())
    x = torch.randn(2, 5, 96, dtype=dtype)
    expected = x.float() @ dequantized.t() + (linear.bias.float() if bias else 0)
    out = layer(x)
    assert out.shape == (2, 5, 40) and out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, rtol=2e-2 if dtype == torch.bfloat16 else 1e-5, atol=2e-2)
    assert layer._kernel  # a width that is a multiple of 16: PyTorch's int8 kernel


@pytest.mark.parametrize("width", [40, 100])
def test_int8_linear_of_other_widths_converts_the_weight_instead(width):
    # the kernel crashes the process on such widths with bf16 inputs of several rows (AVX512-BF16 CPUs)
    torch.manual_seed(0)
    layer = Int8Linear(torch.nn.Linear(width, 13).to(torch.bfloat16))
    assert not layer._kernel
    x = torch.randn(1, 4, width, dtype=torch.bfloat16)
    expected = x.float() @ (layer.weight_int8.float() * layer.scale.float()[:, None]).t() + layer.bias.float()
    torch.testing.assert_close(layer(x).float(), expected, rtol=2e-2, atol=2e-2)


def test_generate_verb_takes_dtype_and_quantize(trained_dir, capsys):
    path, _ = trained_dir
    generate_main(
        ["--model_dir", str(path), "--prompt", "ROMEO:", "--max_new_tokens", "6", "--temperature", "0"]
        + ["--device", "cpu", "--dtype", "bfloat16", "--quantize", "int8"]
    )
    assert capsys.readouterr().out.startswith("ROMEO:")
    with pytest.raises(SystemExit):
        generate_main(["--model_dir", str(path), "--quantize", "int4"])


def test_every_inference_verb_takes_the_same_loading_options(tmp_path):
    import argparse

    from litllm.infer.textgen import add_inference_args, inference_kwargs
    from litllm.serve.cli import parse_args

    opts = parse_args(["--model_dir", str(tmp_path), "--dtype", "bfloat16", "--quantize", "int8"])
    assert inference_kwargs(opts) == {"device": None, "dtype": "bfloat16", "quantize": "int8"}
    parser = argparse.ArgumentParser()
    add_inference_args(parser)
    assert inference_kwargs(parser.parse_args([])) == {"device": None, "dtype": "float32", "quantize": None}
    with pytest.raises(ConfigError, match="float8"):
        load_for_inference(str(tmp_path), "cpu", "float8")
