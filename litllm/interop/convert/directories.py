"""Whole-directory conversion: an HF checkpoint directory to a litllm model directory and back.

Our side is read and written only through ``litllm.model.model_dir``; HF's through ``hf_files``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from litllm.errors import CheckpointError
from litllm.interop.convert.family import config_from_hf, config_to_hf, hf_model_type
from litllm.interop.convert.hf_files import (
    HF_CONFIG,
    HF_WEIGHTS,
    copy_extras,
    read_hf_weights,
    tokenizer_from_hf,
    write_hf_tokenizer,
    write_json,
)
from litllm.interop.convert.state import HEAD, check_shapes, meta_model, state_from_hf, state_to_hf
from litllm.model.model_dir import ModelDir


def convert_from_hf(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the litllm model directory of an HF checkpoint directory; return ``out_dir``."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    config_path = hf_dir / HF_CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model directory: missing {HF_CONFIG}")
    hf_config = json.loads(config_path.read_text())
    config = config_from_hf(hf_config, str(config_path))
    tokenizer = tokenizer_from_hf(hf_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(f"{hf_dir}: tokenizer has {tokenizer.vocab_size} tokens, the model {config.vocab_size}")
    hf_state, where = read_hf_weights(hf_dir)
    state = state_from_hf(hf_state, config, hf_config["model_type"], where)
    model = meta_model(config)  # shapes to check against, and the config ModelDir.save writes
    check_shapes(state, model, where)
    ModelDir(out_dir).save(model, tokenizer, state_dict=state)
    copy_extras(hf_dir, out_dir)
    return out_dir


def convert_to_hf(model_dir: str | Path, hf_dir: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write an HF checkpoint directory (``AutoModelForCausalLM`` / ``AutoTokenizer`` load it); return ``hf_dir``.

    Without a ``tokenizer.json`` in ``model_dir`` only the model is written.
    """
    # A model directory saved without a tokenizer (possible with ModelDir.save) exports the model alone.
    source, hf_dir = ModelDir(model_dir).check(need_tokenizer=False), Path(hf_dir)
    config = source.config()
    model_type = hf_model_type(config)
    where = str(source.weights_file)
    state = source.state_dict()  # refuses non-finite weights, naming the tensor
    if config.tie_embeddings:
        state.pop(HEAD, None)  # stored once, as the embedding; the check expects it absent
    check_shapes(state, meta_model(config), where)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    tokenizer = source.tokenizer() if source.tokenizer_file.is_file() else None
    hf_dir.mkdir(parents=True, exist_ok=True)
    out = state_to_hf(state, config, model_type)
    save_file({k: v.contiguous() for k, v in out.items()}, str(hf_dir / HF_WEIGHTS), metadata={"format": "pt"})
    stored_dtype = next(iter(out.values())).dtype
    eot_id = tokenizer.eot_id if tokenizer is not None else None
    write_json(hf_dir / HF_CONFIG, config_to_hf(config, eot_id, stored_dtype))
    if tokenizer is not None:
        write_hf_tokenizer(hf_dir, tokenizer, config.block_size, extras_from=source.path)
    return hf_dir
