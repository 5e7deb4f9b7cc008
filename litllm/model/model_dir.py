"""The model directory: what a finished run leaves behind and what every other verb reads.

    <dir>/model.safetensors   weights (a tied head is stored once, as the embedding)
    <dir>/config.json         ModelConfig fields
    <dir>/tokenizer.json      the tokenizer the model was trained with

Weights are read only through safetensors, which cannot execute code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.tokenizer import Tokenizer

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"


def _unique_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)  # the same storage as wte.weight
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_model_dir(
    directory: str | Path,
    model: GPT,
    tokenizer: Tokenizer | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write weights, config and tokenizer to ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = _unique_state_dict(model) if state_dict is None else dict(state_dict)
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / WEIGHTS), metadata={"format": "pt"})
    model.config.to_json(directory / CONFIG)
    if tokenizer is not None:
        tokenizer.save(directory / TOKENIZER)
    return directory


def check_model_dir(directory: str | Path, need_tokenizer: bool = True) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory not found: {directory}")
    needed = [CONFIG, WEIGHTS] + ([TOKENIZER] if need_tokenizer else [])
    for name in needed:
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a complete model directory: missing {name}")
    return directory


def load_weights(model: GPT, path: str | Path, strict: bool = True) -> None:
    """Load safetensors weights into ``model``, naming any tensor whose name or shape differs."""
    state = load_file(str(path))
    expected = _unique_state_dict_shapes(model)
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    differ = [n for n in expected if n in state and tuple(state[n].shape) != expected[n]]
    if differ:
        name = differ[0]
        raise CheckpointError(
            f"{path}: tensor {name!r} has shape {tuple(state[name].shape)} but the model expects {expected[name]} "
            f"({len(differ)} tensor(s) differ: the checkpoint was made for a different model shape)"
        )
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if strict and (missing or unexpected):
        raise CheckpointError(f"{path}: missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}")
    model.load_state_dict(state, strict=False)


def _unique_state_dict_shapes(model: GPT) -> dict[str, tuple[int, ...]]:
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes


def load_model_dir(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[GPT, Tokenizer]:
    """Build the model described by ``directory`` and load its weights and tokenizer."""
    directory = check_model_dir(directory)
    config = ModelConfig.from_json(directory / CONFIG)
    with torch.device(device):
        model = GPT(config)
    load_weights(model, directory / WEIGHTS)
    if dtype is not None:
        model = model.to(dtype)
    tokenizer = Tokenizer.from_file(directory / TOKENIZER)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model only {config.vocab_size} embeddings"
        )
    return model.eval(), tokenizer
