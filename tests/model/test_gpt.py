import math

import pytest
import torch

from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT, apply_rope, rope_tables

ARCHS = ["tiny-gpt2", "tiny-llama", "tiny-mistral"]


def make(name: str, seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(ModelConfig.from_name(name, **overrides)).eval()


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("qk_norm", [False, True])
def test_future_tokens_never_change_past_logits(name, qk_norm):
    model = make(name, qk_norm=qk_norm)
    idx = torch.randint(0, 512, (2, 40))
    t = 23
    changed = idx.clone()
    changed[:, t:] = torch.randint(0, 512, (2, 40 - t))
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-5)
    assert not torch.allclose(a[:, t:], b[:, t:])


def test_output_shape_and_block_size_limit():
    model = make("tiny-gpt2")
    assert model(torch.zeros(3, 64, dtype=torch.long)).shape == (3, 64, 512)
    with pytest.raises(ValueError, match="exceeds the model's block_size"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_gqa_equals_mha_with_repeated_kv_heads():
    """A GQA model computes what an MHA model computes when each KV head is copied to its query group."""
    gqa = make("tiny-llama")  # 4 query heads, 2 KV heads
    mha = make("tiny-llama", n_kv_head=4)
    state = gqa.state_dict()
    hd, nh, nkv = 16, 4, 2
    for i in range(2):
        w = state[f"blocks.{i}.attn.qkv.weight"]
        q, k, v = w.split([nh * hd, nkv * hd, nkv * hd])
        rep = nh // nkv
        k = k.view(nkv, hd, -1).repeat_interleave(rep, dim=0).reshape(nh * hd, -1)
        v = v.view(nkv, hd, -1).repeat_interleave(rep, dim=0).reshape(nh * hd, -1)
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat([q, k, v])
    mha.load_state_dict(state)
    idx = torch.randint(0, 512, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(gqa(idx), mha(idx), rtol=1e-4, atol=1e-5)


def test_rope_scores_depend_only_on_relative_position():
    config = ModelConfig.from_name("tiny-llama")
    cos, sin = rope_tables(config)
    q, k = torch.randn(config.head_dim), torch.randn(config.head_dim)

    def score(m: int, n: int) -> torch.Tensor:
        qm = apply_rope(q.view(1, 1, 1, -1), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k.view(1, 1, 1, -1), cos[n : n + 1], sin[n : n + 1])
        return (qm * kn).sum()

    torch.testing.assert_close(score(5, 2), score(40, 37), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(score(5, 2), score(5, 4))
    # rotation keeps the vector's length
    rotated = apply_rope(q.view(1, 1, 1, -1), cos[7:8], sin[7:8])
    torch.testing.assert_close(rotated.norm(), q.norm())


def test_rope_theta_changes_the_tables():
    a = rope_tables(ModelConfig.from_name("tiny-llama"))[0]
    b = rope_tables(ModelConfig.from_name("tiny-llama", rope_theta=500000.0))[0]
    assert not torch.allclose(a[1:], b[1:])


def test_sliding_window_limits_what_one_layer_sees():
    model = make("tiny-mistral", n_layer=1)  # window 16
    idx = torch.randint(0, 512, (1, 48))
    changed = idx.clone()
    changed[0, 0] = (idx[0, 0] + 1) % 512
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert not torch.allclose(a[0, 1:16], b[0, 1:16])  # inside the window: token 0 matters
    torch.testing.assert_close(a[0, 16:], b[0, 16:], rtol=0, atol=1e-6)  # beyond it: it does not


def test_sliding_window_wider_than_sequence_is_full_attention():
    windowed, full = make("tiny-mistral", sliding_window=64), make("tiny-mistral", sliding_window=None)
    full.load_state_dict(windowed.state_dict())
    idx = torch.randint(0, 512, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(windowed(idx), full(idx))


def test_gpt2_init_scales_residual_projections():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("gpt2-124m", n_layer=8, vocab_size=1000))
    expected = 0.02 / math.sqrt(2 * 8)
    assert model.blocks[0].attn.proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[0].mlp.down.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(model.blocks[0].attn.qkv.bias == 0)


@pytest.mark.parametrize(("tied", "same"), [(True, True), (False, False)])
def test_head_tying(tied, same):
    model = make("tiny-llama", tie_embeddings=tied)
    assert (model.lm_head.weight is model.wte.weight) == same


def test_gpt2_and_llama_flavours_use_their_layers():
    gpt2, llama = make("tiny-gpt2"), make("tiny-llama")
    assert isinstance(gpt2.norm, torch.nn.LayerNorm) and gpt2.wpe is not None
    assert isinstance(llama.norm, torch.nn.RMSNorm) and llama.wpe is None
    assert hasattr(llama.blocks[0].mlp, "gate") and not hasattr(gpt2.blocks[0].mlp, "gate")
    assert llama.blocks[0].attn.qkv.bias is None and gpt2.blocks[0].attn.qkv.bias is not None


def test_bf16_forward_runs_and_stays_close():
    model = make("tiny-llama")
    idx = torch.randint(0, 512, (2, 32))
    with torch.no_grad():
        ref = model(idx)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(idx)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1
