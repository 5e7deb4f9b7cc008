"""``litllm convert to-gguf``: files read back with ``gguf.GGUFReader`` (names, shapes, values, metadata)."""

from __future__ import annotations

import math

import gguf
import pytest
import torch

from litllm.errors import ConfigError
from litllm.interop.convert import convert_main
from litllm.interop.convert.gguf import _permute_rotary, gguf_architecture, write_gguf
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT, apply_rope, rope_tables
from litllm.model.model_dir import ModelDir


def export(tmp_path, tokenizer, preset: str, dtype: str = "float32", **overrides):
    torch.manual_seed(0)
    config = ModelConfig.from_name(preset, **overrides)
    model = GPT(config).eval()
    model_dir = ModelDir(tmp_path / preset).save(model, tokenizer)
    convert_main(["to-gguf", str(model_dir), str(tmp_path / f"{preset}.gguf"), "--dtype", dtype])
    reader = gguf.GGUFReader(tmp_path / f"{preset}.gguf")
    tensors = {t.name: torch.from_numpy(t.data.copy()) for t in reader.tensors}
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    return model, tensors, fields


def test_gpt2_layout_metadata_and_tokenizer(tmp_path, small_tokenizer):
    model, tensors, fields = export(tmp_path, small_tokenizer, "tiny-gpt2", vocab_size=520)
    state = model.state_dict()
    assert fields["general.architecture"] == "gpt2"
    assert fields["gpt2.context_length"] == 64 and fields["gpt2.embedding_length"] == 64
    assert fields["gpt2.block_count"] == 2 and fields["gpt2.feed_forward_length"] == 256
    assert fields["gpt2.attention.head_count"] == 4 and fields["gpt2.attention.head_count_kv"] == 4
    assert fields["gpt2.attention.layer_norm_epsilon"] == pytest.approx(1e-5)
    # the tokenizer: one token per embedding row, end-of-text as a control token, BOS = EOS = it
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    assert len(tokens) == 520 and fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    eot = small_tokenizer.eot_id
    assert tokens[eot] == "<|endoftext|>" and types[eot] == gguf.TokenType.CONTROL
    assert fields["tokenizer.ggml.bos_token_id"] == eot and fields["tokenizer.ggml.eos_token_id"] == eot
    vocab = small_tokenizer.backend.get_vocab()
    assert all(tokens[i] == text for text, i in vocab.items())
    assert tokens[515] == "[PAD515]" and types[515] == gguf.TokenType.UNUSED  # padding rows past the tokenizer
    merges = fields["tokenizer.ggml.merges"]
    assert len(merges) > 200 and all(len(m.split(" ")) == 2 for m in merges)
    # the weights: llama.cpp's names, PyTorch's shapes and values; the tied head written out, as llama.cpp does
    expected = {"token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight"}
    for i in range(2):
        for name in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"):
            expected |= {f"blk.{i}.{name}.weight", f"blk.{i}.{name}.bias"}
    assert set(tensors) == expected
    assert torch.equal(tensors["blk.1.attn_qkv.weight"], state["blocks.1.attn.qkv.weight"])
    assert torch.equal(tensors["blk.0.ffn_down.bias"], state["blocks.0.mlp.down.bias"])
    assert torch.equal(tensors["output.weight"], state["wte.weight"])
    assert tensors["position_embd.weight"].shape == (64, 64)


def test_llama_layout_splits_qkv_and_permutes_rotary_rows(tmp_path, small_tokenizer):
    model, tensors, fields = export(tmp_path, small_tokenizer, "tiny-llama", "float16", tie_embeddings=False)
    state, config = model.state_dict(), model.config
    assert fields["general.architecture"] == "llama" and fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16
    assert fields["llama.attention.head_count"] == 4 and fields["llama.attention.head_count_kv"] == 2
    assert fields["llama.rope.freq_base"] == pytest.approx(config.rope_theta)
    assert fields["llama.rope.dimension_count"] == 16
    assert fields["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(config.norm_eps)
    per_block = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
    expected = {f"blk.{i}.{n}.weight" for i in range(2) for n in per_block}
    assert set(tensors) == expected | {"token_embd.weight", "output_norm.weight", "output.weight"}
    assert tensors["blk.0.attn_q.weight"].dtype == torch.float16  # matrices in float16, norms in float32
    assert tensors["blk.0.attn_norm.weight"].dtype == torch.float32
    assert tensors["blk.0.attn_k.weight"].shape == (32, 64) and tensors["blk.0.attn_v.weight"].shape == (32, 64)
    q, k, v = state["blocks.0.attn.qkv.weight"].split([64, 32, 32])
    torch.testing.assert_close(tensors["blk.0.attn_v.weight"].float(), v, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(tensors["blk.0.attn_q.weight"].float(), _permute_rotary(q, 4), atol=1e-3, rtol=1e-3)

    # llama.cpp's llama rotates adjacent pairs: with the permuted rows its attention scores equal litllm's
    x = torch.randn(2, 64)
    cos, sin = rope_tables(config)
    ours_q = apply_rope((x[:1] @ q.T).view(1, 4, 1, 16).transpose(1, 2), cos[5:6], sin[5:6])
    ours_k = apply_rope((x[1:] @ k.T).view(1, 2, 1, 16).transpose(1, 2), cos[2:3], sin[2:3])
    theirs_q = rotate_pairs((x[:1] @ tensors["blk.0.attn_q.weight"].float().T).view(4, 16), 5, config.rope_theta)
    theirs_k = rotate_pairs((x[1:] @ tensors["blk.0.attn_k.weight"].float().T).view(2, 16), 2, config.rope_theta)
    ours = torch.einsum("hd,hd->h", ours_q.reshape(4, 16), ours_k.reshape(2, 16).repeat_interleave(2, 0))
    theirs = torch.einsum("hd,hd->h", theirs_q, theirs_k.repeat_interleave(2, 0))
    torch.testing.assert_close(theirs, ours, atol=2e-3, rtol=2e-3)


def rotate_pairs(x: torch.Tensor, position: int, theta: float) -> torch.Tensor:
    """llama.cpp's ``LLAMA_ROPE_TYPE_NORM``: rotate (x[2i], x[2i+1]) by position * theta^(-2i/d)."""
    d = x.shape[-1]
    angle = position * theta ** (-torch.arange(0, d, 2).double() / d)
    c, s = angle.cos().float(), angle.sin().float()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * c - odd * s, even * s + odd * c], dim=-1).flatten(-2)


def test_architecture_follows_the_config_and_unsupported_shapes_are_named():
    assert gguf_architecture(ModelConfig.from_name("tiny-llama", qk_norm=True)) == "qwen3"
    assert gguf_architecture(ModelConfig.from_name("tiny-llama", attn_bias=True)) == "qwen2"
    with pytest.raises(ConfigError, match="sliding_window"):
        gguf_architecture(ModelConfig.from_name("tiny-mistral"))
    with pytest.raises(ConfigError, match="mlp=swiglu"):
        gguf_architecture(ModelConfig.from_name("tiny-llama", mlp="gelu"))


def test_llama31_rope_scaling_becomes_rope_freqs(tmp_path, small_tokenizer):
    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    _, tensors, _ = export(tmp_path, small_tokenizer, "tiny-llama", rope_scaling=scaling)
    # llama.cpp's converter's formula: factor 1 for short wavelengths, 8 for long, smooth in between
    expected = []
    for i in range(0, 16, 2):
        wavelength = 2 * math.pi * 10000.0 ** (i / 16)
        smooth = (16 / wavelength - 1.0) / (4.0 - 1.0)
        expected.append(1.0 if wavelength < 16 / 4 else 8.0 if wavelength > 16 else 1 / ((1 - smooth) / 8 + smooth))
    torch.testing.assert_close(tensors["rope_freqs.weight"], torch.tensor(expected))
    assert not (tmp_path / "tiny-llama.gguf.tmp").exists()
    with pytest.raises(ConfigError, match="float8"):
        write_gguf(tmp_path / "tiny-llama", tmp_path / "x.gguf", "float8")
