"""``litllm convert to-gguf DIR OUT.gguf``: a model directory as one GGUF file for llama.cpp.

The file holds the weights under llama.cpp's tensor names, the hyperparameters llama.cpp reads
(``{arch}.context_length``, ``embedding_length``, ``block_count``, ``feed_forward_length``, head counts,
norm epsilon, rotary base and dimensions) and the byte-level BPE tokenizer (tokens, token types, merges,
end-of-text as both BOS and EOS id), so the file runs without the model directory.

Architectures, chosen from the config:

- ``gpt2``: learned positions, LayerNorm with biases, GELU MLP. The fused q/k/v projection is kept
  fused (``attn_qkv``) and the head is written as ``output`` even when tied, as llama.cpp's own
  converter does.
- ``llama`` (RMSNorm, SwiGLU, rotary, no q/k/v-only biases), ``qwen2`` (biases on q/k/v only) and
  ``qwen3`` (QK-norm). litllm's rotary layout is Hugging Face's "rotate half"; llama.cpp's ``llama``
  rotates adjacent pairs, so its query and key rows are permuted the way llama.cpp's converter
  permutes Hugging Face Llama weights (``qwen2``/``qwen3`` use the rotate-half layout and are not).
  Llama-3.1 rotary scaling becomes the ``rope_freqs`` tensor.

A sliding window (Mistral style) or any other shape llama.cpp's architectures cannot express raises
``ConfigError`` naming the field. ``gguf`` is an optional dependency (the ``gguf`` extra).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import llama3_scaled_frequencies
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import Tokenizer

GGUF_DTYPES = {"float32": np.float32, "float16": np.float16}


def _gguf():
    try:
        import gguf
    except ImportError as err:
        raise ConfigError(f'litllm convert to-gguf needs the gguf package ({err}): pip install -e ".[gguf]"') from None
    return gguf


def gguf_architecture(config: ModelConfig) -> str:
    """llama.cpp's architecture name for ``config`` (``ConfigError`` naming the field it cannot express)."""
    if config.sliding_window is not None:
        raise ConfigError(f"sliding_window={config.sliding_window}: llama.cpp's llama architecture has none")
    if config.position == "learned":
        if (config.norm, config.mlp, config.bias, config.attn_bias) != ("layernorm", "gelu", True, True):
            raise ConfigError(
                "learned positions export as llama.cpp's gpt2, which needs norm=layernorm, mlp=gelu and "
                f"bias=true (got norm={config.norm}, mlp={config.mlp}, bias={config.bias})"
            )
        if config.qk_norm:
            raise ConfigError("qk_norm=true: llama.cpp's gpt2 architecture has no QK-norm")
        return "gpt2"
    if (config.norm, config.mlp) != ("rmsnorm", "swiglu"):
        raise ConfigError(f"rotary models export as llama.cpp's llama, which needs norm=rmsnorm and mlp=swiglu "
                          f"(got norm={config.norm}, mlp={config.mlp})")  # fmt: skip
    if config.qk_norm:
        arch = "qwen3"
    elif config.attn_bias and not config.bias:
        arch = "qwen2"
    else:
        arch = "llama"
    if config.rope_scaling is not None and arch != "llama":
        raise ConfigError(f"rope_scaling: llama.cpp's {arch} architecture takes no Llama-3.1 rotary scaling")
    return arch


def _permute_rotary(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of each head from rotate-half order (i, i + d/2) to adjacent pairs (2i, 2i + 1), as llama.cpp's converter."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(config: ModelConfig, state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """litllm's weights (as ``ModelDir.state_dict`` returns them) under llama.cpp's names and layouts."""
    out = {"token_embd.weight": state["wte.weight"], "output_norm.weight": state["norm.weight"]}
    if "norm.bias" in state:
        out["output_norm.bias"] = state["norm.bias"]
    if config.position == "learned":
        out["position_embd.weight"] = state["wpe.weight"]
    head = state.get("lm_head.weight")
    if head is not None and not config.tie_embeddings:
        out["output.weight"] = head
    elif arch == "gpt2":
        out["output.weight"] = state["wte.weight"]
    q_rows, kv_rows = config.n_head * config.head_dim, config.n_kv_head * config.head_dim
    names = {"norm_1": "attn_norm", "norm_2": "ffn_norm", "attn.proj": "attn_output", "mlp.up": "ffn_up"}
    names.update({"mlp.down": "ffn_down", "mlp.gate": "ffn_gate", "attn.q_norm": "attn_q_norm"})
    names["attn.k_norm"] = "attn_k_norm"
    for i in range(config.n_layer):
        prefix = f"blocks.{i}."
        for name, tensor in state.items():
            if not name.startswith(prefix):
                continue
            module, kind = name[len(prefix) :].rsplit(".", 1)
            if module == "attn.qkv" and arch == "gpt2":
                out[f"blk.{i}.attn_qkv.{kind}"] = tensor
            elif module == "attn.qkv":
                q, k, v = tensor.split([q_rows, kv_rows, kv_rows])
                if arch == "llama":
                    q, k = _permute_rotary(q, config.n_head), _permute_rotary(k, config.n_kv_head)
                out.update({f"blk.{i}.attn_q.{kind}": q, f"blk.{i}.attn_k.{kind}": k, f"blk.{i}.attn_v.{kind}": v})
            elif module in names:
                out[f"blk.{i}.{names[module]}.{kind}"] = tensor
            else:
                raise ConfigError(f"tensor {name!r} has no llama.cpp {arch} counterpart")
    if config.rope_scaling is not None:
        inv_freq = 1.0 / config.rope_theta ** (torch.arange(0, config.head_dim, 2).float() / config.head_dim)
        out["rope_freqs.weight"] = inv_freq / llama3_scaled_frequencies(inv_freq, **config.rope_scaling)
    return out


def _pre_tokenizer(spec: dict | None) -> str:
    """llama.cpp's name for the pre-tokenizer (the regex that splits text before BPE), or ``default``."""
    if spec and spec.get("type") == "ByteLevel" and spec.get("use_regex", True):
        return "gpt-2"
    patterns = json.dumps(spec or {})
    if "\\\\p{N}{1,3}" in patterns:  # Llama 3's split: digits in groups of up to three
        return "llama-bpe"
    return "default"


def vocabulary(tokenizer: Tokenizer, vocab_size: int) -> dict:
    """Tokens (one per embedding row), their llama.cpp token types, merges and pre-tokenizer of a BPE."""
    gguf = _gguf()
    spec = json.loads(tokenizer.backend.to_str())
    model = spec["model"]
    if model.get("type") != "BPE":
        raise ConfigError(f"to-gguf exports byte-level BPE tokenizers; this one is {model.get('type')}")
    tokens: list[str | None] = [None] * vocab_size
    types = [int(gguf.TokenType.NORMAL)] * vocab_size
    for text, i in model["vocab"].items():
        tokens[i] = text
    for added in spec.get("added_tokens", []):
        tokens[added["id"]] = added["content"]
        types[added["id"]] = int(gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED)
    for i, text in enumerate(tokens):
        if text is None:  # embedding rows beyond the tokenizer (vocabulary padded to a round size)
            tokens[i], types[i] = f"[PAD{i}]", int(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return {"tokens": tokens, "types": types, "merges": merges, "pre": _pre_tokenizer(spec.get("pre_tokenizer"))}


def write_gguf(model_dir: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Write ``model_dir`` as the GGUF file ``out``; matrices in ``dtype`` (float32 or float16), vectors in float32.

    The file is written under a temporary name and renamed, so an interrupted export leaves no partial file.
    """
    gguf = _gguf()
    if dtype not in GGUF_DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: GGUF export writes {' or '.join(GGUF_DTYPES)}")
    source = ModelDir(model_dir).check()
    config, tokenizer = source.config(), source.tokenizer()
    arch = gguf_architecture(config)
    vocab = vocabulary(tokenizer, config.vocab_size)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_name(source.path.resolve().name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "float32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.block_size)
    writer.add_embedding_length(config.n_embd)
    writer.add_block_count(config.n_layer)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.n_head)
    writer.add_head_count_kv(config.n_kv_head)
    if config.head_dim * config.n_head != config.n_embd:
        writer.add_key_length(config.head_dim)
        writer.add_value_length(config.head_dim)
    if arch == "gpt2":
        writer.add_layer_norm_eps(config.norm_eps)
    else:
        writer.add_layer_norm_rms_eps(config.norm_eps)
        writer.add_rope_freq_base(config.rope_theta)
        writer.add_rope_dimension_count(config.head_dim)
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(vocab["pre"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_token_merges(vocab["merges"])
    writer.add_bos_token_id(tokenizer.eot_id)
    writer.add_eos_token_id(tokenizer.eot_id)
    writer.add_add_bos_token(False)  # litllm prompts start with the text itself
    for name, tensor in gguf_tensors(config, source.state_dict(), arch).items():
        array = tensor.detach().float().numpy()
        writer.add_tensor(name, array.astype(GGUF_DTYPES[dtype]) if array.ndim > 1 else array)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, out)
    return out
