import pytest
import torch

from litllm.errors import ConfigError
from litllm.model.config import PRESETS, ModelConfig
from litllm.model.gpt import GPT


def count(name: str, **overrides) -> int:
    with torch.device("meta"):
        return GPT(ModelConfig.from_name(name, **overrides)).num_parameters()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt2-124m", 124_439_808),  # GPT-2 small, tied head, vocab 50257
        ("gpt2-350m", 354_823_168),  # GPT-2 medium
        ("gpt2-774m", 774_030_080),  # GPT-2 large
        ("gpt2-1.5b", 1_557_611_200),  # GPT-2 XL
    ],
)
def test_gpt2_parameter_counts_match_published(name, expected):
    assert count(name) == expected


def test_llama_125m_shape_and_count():
    config = ModelConfig.from_name("llama-125m")
    assert (config.n_kv_head, config.head_dim, config.tie_embeddings) == (4, 64, False)
    d, v, i, L, kv = 768, 32000, 2048, 12, 4 * 64
    per_block = d * (d + 2 * kv) + d * d + 3 * d * i + 2 * d  # qkv, proj, SwiGLU, two RMSNorm gains
    assert count("llama-125m") == 2 * v * d + L * per_block + d
    assert 120e6 < count("llama-125m") < 130e6


@pytest.mark.parametrize(
    ("name", "expected"),
    [("llama3.2-1b", 1_235_814_400), ("llama3-8b", 8_030_261_248)],  # Meta's published counts
)
def test_llama3_parameter_counts_match_published(name, expected):
    assert count(name) == expected


def test_untying_adds_exactly_one_head():
    assert count("gpt2-124m", tie_embeddings=False) - count("gpt2-124m") == 50257 * 768


def test_every_preset_builds():
    for name in PRESETS:
        assert count(name) > 0


def test_unknown_override_key_is_named():
    with pytest.raises(ConfigError, match="n_layers"):
        ModelConfig.from_name("gpt2-124m", n_layers=4)


def test_unknown_preset_is_named():
    with pytest.raises(ConfigError, match="gpt5"):
        ModelConfig.from_name("gpt5")


def test_inconsistent_heads_rejected():
    with pytest.raises(ConfigError, match="multiple of n_kv_head"):
        ModelConfig(n_head=12, n_kv_head=5)


def test_json_roundtrip(tmp_path):
    config = ModelConfig.from_name("tiny-mistral", dropout=0.1)
    config.to_json(tmp_path / "config.json")
    assert ModelConfig.from_json(tmp_path / "config.json") == config


def test_json_with_unknown_key_names_file_and_key(tmp_path):
    (tmp_path / "config.json").write_text('{"n_layer": 2, "num_layers": 3}')
    with pytest.raises(ConfigError, match=r"config\.json.*num_layers"):
        ModelConfig.from_json(tmp_path / "config.json")


def test_flops_per_token_is_six_times_matmul_params_plus_attention():
    config = ModelConfig.from_name("gpt2-124m")
    non_embedding = 12 * (12 * 768 * 768) + 768 * 50257  # blocks' matmuls + head
    assert config.flops_per_token(1) == pytest.approx(6 * non_embedding, rel=1e-3)
    assert config.flops_per_token(1024) > config.flops_per_token(1)
