import pytest
import torch

from litllm.infer.generate import generate, sample_next
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT


def test_greedy_is_deterministic_and_top_k_1_is_greedy():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama")).eval()
    prompt = torch.randint(0, 512, (2, 5))
    greedy = generate(model, prompt, 10, temperature=0)
    assert greedy.shape == (2, 15) and torch.equal(greedy[:, :5], prompt)
    assert torch.equal(greedy, generate(model, prompt, 10, temperature=0))
    assert torch.equal(greedy, generate(model, prompt, 10, temperature=1.0, top_k=1))


def test_generation_longer_than_context_crops_the_window():
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=8)).eval()
    out = generate(model, torch.zeros(1, 6, dtype=torch.long), 20, temperature=0)
    assert out.shape == (1, 26)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    picks = {sample_next(logits, 1.0, top_p=0.7, generator=g).item() for _ in range(200)}
    assert picks == {0, 1}


def test_stops_at_end_of_text():
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()
    first = generate(model, torch.zeros(1, 1, dtype=torch.long), 5, temperature=0)[0, 1].item()
    out = generate(model, torch.zeros(1, 1, dtype=torch.long), 5, temperature=0, eos_id=first)
    assert out.shape == (1, 2)


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama", "tiny-mistral"])
def test_cached_greedy_generation_equals_recomputing_every_step(arch):
    """Prefill + one token per step reproduces full recomputation, past the sliding window (16) of tiny-mistral."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name(arch)).eval()
    prompt = torch.randint(0, 512, (2, 7))
    cached = generate(model, prompt, 40, temperature=0)
    recomputed = generate(model, prompt, 40, temperature=0, use_cache=False)
    assert cached.shape == (2, 47)
    assert torch.equal(cached, recomputed)


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama", "tiny-mistral"])
def test_cache_logits_match_the_full_forward_for_chunks(arch):
    """Feeding a sequence in chunks (prefill 5, then 1, 1, then 30 at once) gives the logits of one full pass."""
    torch.manual_seed(1)
    model = GPT(ModelConfig.from_name(arch)).eval()
    idx = torch.randint(0, 512, (2, 37))
    with torch.no_grad():
        full = model(idx)
        cache = model.make_cache()
        pieces = [model(idx[:, a:b], cache) for a, b in [(0, 5), (5, 6), (6, 7), (7, 37)]]
    assert cache.pos == 37
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-5)


def test_gqa_cache_holds_only_the_kv_heads():
    model = GPT(ModelConfig.from_name("tiny-llama")).eval()  # 4 query heads, 2 KV heads
    cache = model.make_cache(20)
    with torch.no_grad():
        model(torch.zeros(3, 4, dtype=torch.long), cache)
    assert cache.layers[0].k.shape == (3, 2, 20, 16)


def test_sliding_window_cache_holds_only_the_window():
    """tiny-mistral (window 16): a 64-position cache keeps 16 slots, and 60 steps through it match one pass."""
    torch.manual_seed(2)
    model = GPT(ModelConfig.from_name("tiny-mistral", block_size=64)).eval()
    idx = torch.randint(0, 512, (2, 60))
    with torch.no_grad():
        full = model(idx)
        cache = model.make_cache(64)
        steps = [model(idx[:, :20], cache)] + [model(idx[:, i : i + 1], cache) for i in range(20, 60)]
    assert cache.layers[0].k.shape == (2, 2, 16, 16)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)


def test_cache_under_autocast_keeps_the_activation_dtype():
    model = GPT(ModelConfig.from_name("tiny-llama")).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = generate(model, torch.zeros(1, 3, dtype=torch.long), 5, temperature=0)
    assert out.shape == (1, 8)


def test_prompt_longer_than_the_context_is_cropped_from_the_left_with_a_warning():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=16)).eval()
    prompt = torch.randint(0, 512, (1, 30))
    with pytest.warns(UserWarning, match="keeping the last 12 prompt tokens"):
        out = generate(model, prompt, 4, temperature=0)
    assert torch.equal(out[:, :30], prompt)
    # the new tokens are those the model writes after the last 12 prompt tokens alone
    assert torch.equal(out[:, 30:], generate(model, prompt[:, -12:], 4, temperature=0)[:, 12:])


def test_generation_past_the_context_keeps_going_with_a_sliding_context():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=8)).eval()
    with pytest.warns(UserWarning, match="context of 8 tokens is full: generation goes on from the last 4"):
        out = generate(model, torch.randint(0, 512, (2, 7)), 20, temperature=0)
    assert out.shape == (2, 27)


def test_a_prompt_that_fits_the_context_is_never_cropped_for_more_new_tokens():
    # A prompt of 12 in a 16-token context with 40 new tokens: the first new token must come from the
    # whole prompt (cropping it to make room, as before, answered a different question).
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-llama", block_size=16)).eval()
    prompt = torch.randint(0, 512, (1, 12))
    with pytest.warns(UserWarning, match="is full"):
        out = generate(model, prompt, 40, temperature=0)
    with torch.no_grad():
        first = model(prompt)[0, -1].argmax()
    assert out.shape == (1, 52) and out[0, 12] == first


def test_finished_rows_repeat_the_end_token():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    prompt = torch.randint(0, 512, (2, 3))
    free = generate(model, prompt, 6, temperature=0)
    eos = free[0, 4].item()  # row 0 produces this token at its second step
    out = generate(model, prompt, 6, temperature=0, eos_id=eos)
    assert torch.all(out[0, 4:] == eos)
