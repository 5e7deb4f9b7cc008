"""Hugging Face import/export against `transformers` models built locally (random weights, no hub)."""

from __future__ import annotations

import pytest
import torch
import transformers  # noqa: E402  (a dev dependency: CI installs it, so this test always runs)

from litllm.errors import CheckpointError, ConfigError
from litllm.interop.convert import config_from_hf, convert_from_hf, convert_to_hf
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir

VOCAB = 512
SMALL_LLAMA = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


def hf_model(kind: str):
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4)
        model = transformers.GPT2LMHeadModel(config)
    elif kind == "llama-untied":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL_LLAMA, tie_word_embeddings=False))
    elif kind == "llama-tied":
        model = transformers.LlamaForCausalLM(
            transformers.LlamaConfig(**SMALL_LLAMA, tie_word_embeddings=True, rope_theta=500000.0)
        )
    elif kind == "llama3.1":
        scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
        scaling["original_max_position_embeddings"] = 16  # short, so that the test's positions feel the scaling
        config = transformers.LlamaConfig(**SMALL_LLAMA, rope_theta=500000.0, rope_scaling=scaling)
        model = transformers.LlamaForCausalLM(config)
    elif kind == "mistral":
        model = transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL_LLAMA, head_dim=8, sliding_window=8))
    elif kind == "qwen3":  # QK-norm; head_dim given (Qwen3's default of 128 is not hidden_size / heads)
        model = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**SMALL_LLAMA, head_dim=8))
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**SMALL_LLAMA))
    with torch.no_grad():  # random biases and norm gains, so that a swapped or dropped one shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def hf_logits(model, idx: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(idx).logits


@pytest.mark.parametrize("kind", ["gpt2", "llama-untied", "llama-tied", "llama3.1", "mistral", "qwen2", "qwen3"])
def test_round_trip_matches_transformers_logits(tmp_path, small_tokenizer, kind):
    reference = hf_model(kind)
    reference.save_pretrained(tmp_path / "hf")
    small_tokenizer.save(tmp_path / "hf")
    idx = torch.randint(0, VOCAB, (2, 40))  # longer than mistral's window of 8
    expected = hf_logits(reference, idx)

    convert_from_hf(tmp_path / "hf", tmp_path / "ours")
    ours, tokenizer = ModelDir(tmp_path / "ours").load()
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), expected, rtol=0, atol=1e-4)
    assert ours.config.tie_embeddings == (kind in ("gpt2", "llama-tied"))
    if kind == "mistral":
        assert ours.config.sliding_window == 8
    assert ours.config.qk_norm == (kind == "qwen3")
    if kind == "llama-tied":
        assert ours.config.rope_theta == 500000.0
    if kind == "llama3.1":
        assert ours.config.rope_scaling["factor"] == 8.0
        plain = GPT(ModelConfig.from_dict({**ours.config.to_dict(), "rope_scaling": None}))
        plain.load_state_dict(ours.state_dict())
        with torch.no_grad():  # the scaling matters here: without it the logits differ
            assert (plain(idx) - expected).abs().max() > 1e-3

    convert_to_hf(tmp_path / "ours", tmp_path / "back")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "back").eval()
    assert type(back) is type(reference)
    torch.testing.assert_close(hf_logits(back, idx), expected, rtol=0, atol=1e-4)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "back")
    text = "ROMEO: But soft, what light?"
    assert hf_tokenizer(text)["input_ids"] == tokenizer.encode(text)
    assert hf_tokenizer.eos_token == "<|endoftext|>"


def test_sharded_checkpoint_converts(tmp_path, small_tokenizer):
    reference = hf_model("llama-untied")
    reference.save_pretrained(tmp_path / "hf", max_shard_size="20KB")
    small_tokenizer.save(tmp_path / "hf")
    assert (tmp_path / "hf" / "model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "hf").glob("model-*.safetensors"))) > 1
    convert_from_hf(tmp_path / "hf", tmp_path / "ours")
    ours, _ = ModelDir(tmp_path / "ours").load()
    idx = torch.randint(0, VOCAB, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), hf_logits(reference, idx), rtol=0, atol=1e-4)


def test_our_presets_export_and_load_in_transformers(tmp_path, small_tokenizer):
    """A model trained here (GQA, untied) goes out and computes the same logits in transformers."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-mistral")).eval()
    ModelDir(tmp_path / "ours").save(model, small_tokenizer)
    convert_to_hf(tmp_path / "ours", tmp_path / "hf")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    idx = torch.randint(0, VOCAB, (2, 48))
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(back, idx), model(idx), rtol=0, atol=1e-4)


LLAMA_JSON = {"model_type": "llama", **SMALL_LLAMA}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "rope_scaling"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope_scaling"),  # incomplete
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, "rope_type"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"attention_bias": True}, "attention_bias"),
        ({"model_type": "falcon"}, "model_type"),
    ],
)
def test_inexpressible_hf_config_names_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        config_from_hf({**LLAMA_JSON, **change})


def test_gpt2_config_with_another_activation_names_the_field():
    hf = {"model_type": "gpt2", "vocab_size": 10, "n_layer": 1, "n_head": 1, "n_embd": 8, "activation_function": "relu"}
    with pytest.raises(ConfigError, match="activation_function"):
        config_from_hf(hf)


def test_missing_tensor_and_missing_config_are_named(tmp_path, small_tokenizer):
    hf_model("llama-untied").save_pretrained(tmp_path / "hf")
    small_tokenizer.save(tmp_path / "hf")
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "hf" / "model.safetensors"
    state = load_file(weights)
    del state["model.layers.1.self_attn.k_proj.weight"]
    save_file(state, weights)
    with pytest.raises(CheckpointError, match=r"missing tensor 'model.layers.1.self_attn.k_proj.weight'"):
        convert_from_hf(tmp_path / "hf", tmp_path / "ours")
    (tmp_path / "hf" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing config.json"):
        convert_from_hf(tmp_path / "hf", tmp_path / "ours")


def test_export_of_an_inexpressible_model_names_the_field(tmp_path, small_tokenizer):
    # QK-norm exports as Qwen3, which has rotary positions and no sliding window.
    ModelDir(tmp_path / "ours").save(GPT(ModelConfig.from_name("tiny-mistral", qk_norm=True)), small_tokenizer)
    with pytest.raises(ConfigError, match="sliding_window=16 cannot be exported as qwen3"):
        convert_to_hf(tmp_path / "ours", tmp_path / "hf")


def test_a_model_directory_without_tokenizer_exports_the_model_alone(tmp_path):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    ModelDir(tmp_path / "ours").save(model)  # no tokenizer
    convert_to_hf(tmp_path / "ours", tmp_path / "hf")
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == ["config.json", "model.safetensors"]
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    idx = torch.randint(0, VOCAB, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(back, idx), model(idx), rtol=0, atol=1e-4)


def test_export_of_a_model_trained_here_tells_generate_where_text_ends(tmp_path, small_tokenizer):
    ModelDir(tmp_path / "ours").save(GPT(ModelConfig.from_name("tiny-llama")), small_tokenizer)
    convert_to_hf(tmp_path / "ours", tmp_path / "hf")
    generation = transformers.GenerationConfig.from_pretrained(tmp_path / "hf")
    assert generation.eos_token_id == generation.pad_token_id == small_tokenizer.eot_id


# One litllm config per registered family, exported as that family; a new family adds its case here.
FAMILY_CONFIGS = {
    "gpt2": ModelConfig.from_name("tiny-gpt2"),
    "llama": ModelConfig.from_name("tiny-llama"),
    "mistral": ModelConfig.from_name("tiny-mistral"),
    "qwen2": ModelConfig.from_name("tiny-llama", attn_bias=True),
    "qwen3": ModelConfig.from_name("tiny-llama", qk_norm=True),
}


def test_every_registered_family_has_a_round_trip_case():
    from litllm.interop.convert import FAMILIES

    assert sorted(FAMILIES) == sorted(FAMILY_CONFIGS)


@pytest.mark.parametrize("model_type", sorted(FAMILY_CONFIGS))
def test_each_family_round_trips_config_and_weights(model_type):
    from litllm.interop.convert import config_to_hf, hf_model_type, state_from_hf, state_to_hf

    config = FAMILY_CONFIGS[model_type]
    assert hf_model_type(config) == model_type
    back = config_from_hf(config_to_hf(config))
    assert {**back.to_dict(), "name": config.name} == config.to_dict()

    torch.manual_seed(0)
    state = GPT(config).state_dict()
    if config.tie_embeddings:
        state.pop("lm_head.weight")
    hf_state = state_to_hf(state, config, model_type)
    restored = state_from_hf(hf_state, config, model_type, "test")
    assert restored.keys() == state.keys()
    for name, tensor in state.items():
        torch.testing.assert_close(restored[name], tensor, rtol=0, atol=0)


def test_an_unknown_model_type_names_the_supported_ones():
    from litllm.interop.convert import get_family, state_from_hf

    supported = "convertible: gpt2, llama, mistral, qwen2, qwen3"
    with pytest.raises(ConfigError, match=f"config.json: model_type 'falcon' is not supported; {supported}"):
        get_family("falcon")
    with pytest.raises(ConfigError, match=f"w: model_type 'falcon' is not supported; {supported}"):
        state_from_hf({}, FAMILY_CONFIGS["llama"], "falcon", "w")
