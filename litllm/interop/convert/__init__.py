"""Hugging Face interop: ``litllm convert from-hf HF_DIR OUT_DIR`` and ``litllm convert to-hf DIR HF_DIR``.

Covered: GPT-2 (``GPT2LMHeadModel``) and the Llama family (``LlamaForCausalLM`` with grouped-query
attention, a tied or untied head and Llama-3.1 rotary scaling, ``MistralForCausalLM`` with its
sliding window, ``Qwen2ForCausalLM`` with biases on q/k/v only, ``Qwen3ForCausalLM`` with QK-norm).
The mapping works on ``config.json`` and the tensors alone, so ``transformers`` is not needed for
either direction. An HF config the backbone cannot express raises ``ConfigError`` naming the field.

- ``family.py``: the ``Family`` interface, the ``FAMILIES`` registry and the config dispatch;
- ``gpt2.py``, ``llama.py``, ``mistral.py``, ``qwen2.py``, ``qwen3.py``: one family each;
- ``state.py``: both directions of the weight mapping, from a family's tensor table;
- ``hf_files.py``: Hugging Face's file names, weights and tokenizer files;
- ``directories.py``: whole directories both ways; ``cli.py``: ``litllm convert``;
- ``gguf.py``: ``litllm convert to-gguf``, one GGUF file for llama.cpp (imported on use: needs ``gguf``).
"""

from __future__ import annotations

# Each family module registers its family in FAMILIES on import.
from litllm.interop.convert import gpt2, llama, mistral, qwen2, qwen3  # noqa: F401
from litllm.interop.convert.cli import convert_main
from litllm.interop.convert.directories import convert_from_hf, convert_to_hf
from litllm.interop.convert.family import (
    FAMILIES,
    Family,
    Tensor,
    config_from_hf,
    config_to_hf,
    family_for,
    get_family,
    hf_model_type,
    register,
)
from litllm.interop.convert.hf_files import TOKENIZER_EXTRAS, read_hf_weights
from litllm.interop.convert.state import state_from_hf, state_to_hf

__all__ = [
    "FAMILIES",
    "TOKENIZER_EXTRAS",
    "Family",
    "Tensor",
    "config_from_hf",
    "config_to_hf",
    "convert_from_hf",
    "convert_main",
    "convert_to_hf",
    "family_for",
    "get_family",
    "hf_model_type",
    "read_hf_weights",
    "register",
    "state_from_hf",
    "state_to_hf",
]
