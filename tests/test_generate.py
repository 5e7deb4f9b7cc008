import torch

from litllm.config import ModelConfig
from litllm.generate import generate, sample_next
from litllm.model import GPT


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
