"""Both directions of the weight mapping, derived from a family's tensor table, and the shape check."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

import torch

from litllm.errors import CheckpointError
from litllm.interop.convert.family import get_family
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT

HEAD = "lm_head.weight"
"""The untied output head: the same name in our state dict and in every family's HF checkpoint."""


def state_from_hf(
    hf_state: dict[str, torch.Tensor], config: ModelConfig, model_type: str, where: str
) -> dict[str, torch.Tensor]:
    """Our state dict from HF tensors; ``CheckpointError`` names a missing or left-over tensor."""
    family = get_family(model_type, where)
    # e.g. GPT2LMHeadModel prefixes "transformer."; GPT2Model checkpoints (e.g. the original gpt2) do not.
    hf_state = {name.removeprefix(family.hf_prefix): tensor for name, tensor in hf_state.items()}
    for name in [n for n in hf_state if any(fnmatchcase(n, pattern) for pattern in family.buffers)]:
        del hf_state[name]
    take = _taker(hf_state, where)
    state: dict[str, torch.Tensor] = {}
    for row in family.tensors(config):
        parts = [take(name) for name in row.hf]
        tensor = torch.cat(parts) if len(parts) > 1 else parts[0]
        state[row.ours] = tensor.t().contiguous() if row.transpose else tensor
    if config.tie_embeddings:
        hf_state.pop(HEAD, None)  # tied: the same matrix as the embedding, when saved at all
    else:
        state[HEAD] = take(HEAD)
    if hf_state:
        raise CheckpointError(f"{where}: tensors the converted model has no place for: {sorted(hf_state)[:5]}")
    return state


def _taker(hf_state: dict[str, torch.Tensor], where: str) -> Callable[[str], torch.Tensor]:
    """Pop tensors by name, so that what is left at the end is what the model has no place for."""

    def take(name: str) -> torch.Tensor:
        if name not in hf_state:
            raise CheckpointError(f"{where}: missing tensor {name!r}")
        return hf_state.pop(name)

    return take


def state_to_hf(state: dict[str, torch.Tensor], config: ModelConfig, model_type: str) -> dict[str, torch.Tensor]:
    """HF tensors from our state dict (a tied head is left out: HF ties it on load)."""
    family = get_family(model_type)
    out: dict[str, torch.Tensor] = {}
    for row in family.tensors(config):
        tensor = state[row.ours].t().contiguous() if row.transpose else state[row.ours]
        parts = [part.contiguous() for part in tensor.split(row.sizes)] if row.sizes else [tensor]
        out.update({family.hf_prefix + name: part for name, part in zip(row.hf, parts, strict=True)})
    if not config.tie_embeddings:
        out[HEAD] = state[HEAD]
    return out


def meta_model(config: ModelConfig) -> GPT:
    """The model of ``config`` on the meta device: its shapes and config, without memory for weights."""
    with torch.device("meta"):
        return GPT(config)


def check_shapes(state: dict[str, torch.Tensor], model: GPT, where: str) -> None:
    """Name the first tensor of ``model`` that ``state`` lacks or holds in another shape."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        expected.pop(HEAD)
    for name, shape in expected.items():
        if name not in state:
            raise CheckpointError(f"{where}: the converted weights lack {name!r}")
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"{where}: tensor {name!r} has shape {tuple(state[name].shape)}, the config implies {shape}"
            )
