"""The speed-run architecture options (all off in every preset): ReLU-squared MLP, zero-initialised output
projections, soft-capped logits, untied head. Shape, causality, exact parameter count, and what each computes."""

import pytest
import torch
import torch.nn.functional as F

from litllm.errors import ConfigError
from litllm.interop.convert.family import family_for
from litllm.model.config import PRESETS, ModelConfig
from litllm.model.gpt import GPT

OPTIONS = {"mlp": "relu2", "zero_init_output_proj": True, "logit_softcap": 15.0, "tie_embeddings": False}


def gpt2_count(c: ModelConfig) -> int:
    """Parameters of a GPT-2-style model (biases, LayerNorms, learned positions), by hand."""
    d, v, h = c.n_embd, c.vocab_size, c.intermediate_size
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d) + 2 * 2 * d
    return v * d + c.block_size * d + c.n_layer * block + 2 * d + (0 if c.tie_embeddings else v * d)


def test_presets_leave_every_option_off():
    for name in PRESETS:
        c = ModelConfig.from_name(name)
        assert c.mlp in ("gelu", "swiglu") and not c.zero_init_output_proj and c.logit_softcap is None


@pytest.mark.parametrize("option", list(OPTIONS) + ["all"])
def test_option_keeps_shape_causality_and_exact_parameter_count(option):
    overrides = OPTIONS if option == "all" else {option: OPTIONS[option]}
    config = ModelConfig.from_name("tiny-gpt2", **overrides)
    torch.manual_seed(0)
    model = GPT(config).eval()
    if config.zero_init_output_proj:
        for block in model.blocks:  # a zero start is the identity: perturb it to see attention at work
            torch.nn.init.normal_(block.attn.proj.weight, std=0.02)
            torch.nn.init.normal_(block.mlp.down.weight, std=0.02)
    assert model.num_parameters() == gpt2_count(config)
    x = torch.randint(0, config.vocab_size, (2, 24))
    logits = model(x)
    assert logits.shape == (2, 24, config.vocab_size)
    changed = x.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % config.vocab_size
    with torch.no_grad():
        torch.testing.assert_close(model(changed)[:, :12], logits[:, :12])
        assert not torch.allclose(model(changed)[:, 12:], logits[:, 12:])


def test_relu2_mlp_squares_the_relu():
    model = GPT(ModelConfig.from_name("tiny-gpt2", mlp="relu2"))
    mlp, x = model.blocks[0].mlp, torch.randn(3, 64)
    torch.testing.assert_close(mlp(x), mlp.down(F.relu(mlp.up(x)) ** 2))
    assert not torch.allclose(mlp(x), mlp.down(F.gelu(mlp.up(x), approximate="tanh")))


def test_zero_init_makes_blocks_the_identity_and_leaves_other_weights_as_default():
    torch.manual_seed(0)
    zero = GPT(ModelConfig.from_name("tiny-gpt2", zero_init_output_proj=True))
    torch.manual_seed(0)
    default = GPT(ModelConfig.from_name("tiny-gpt2"))
    for (name, p), (_, q) in zip(zero.named_parameters(), default.named_parameters()):
        if name.endswith(("attn.proj.weight", "mlp.down.weight")):
            assert not p.any() and q.any(), name
        else:
            assert torch.equal(p, q), name
    x = torch.randint(0, 512, (1, 10))
    embedded = zero.wte(x) + zero.wpe(torch.arange(10))
    torch.testing.assert_close(zero(x), zero.lm_head(zero.norm(embedded)))


def test_softcap_bounds_the_logits_with_tanh():
    torch.manual_seed(0)
    capped = GPT(ModelConfig.from_name("tiny-gpt2", logit_softcap=0.5))
    plain = GPT(ModelConfig.from_name("tiny-gpt2"))
    plain.load_state_dict(capped.state_dict())
    x = torch.randint(0, 512, (2, 16))
    raw, out = plain(x), capped(x)
    assert raw.abs().max() > 0.5 > out.abs().max()
    torch.testing.assert_close(out, 0.5 * torch.tanh(raw / 0.5))
    with pytest.raises(ConfigError, match="logit_softcap"):
        ModelConfig.from_name("tiny-gpt2", logit_softcap=0.0)


@pytest.mark.parametrize(
    ("preset", "override"), [("tiny-gpt2", {"mlp": "relu2"}), ("tiny-llama", {"logit_softcap": 30.0})]
)
def test_options_hugging_face_cannot_compute_refuse_to_export(preset, override):
    with pytest.raises(ConfigError, match=next(iter(override))):
        family_for(ModelConfig.from_name(preset, **override))
    family_for(ModelConfig.from_name(preset, zero_init_output_proj=True))  # only the start differs: exports
