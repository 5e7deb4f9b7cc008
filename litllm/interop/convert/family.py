"""The interface each Hugging Face model family implements, the registry of families, and the config dispatch.

A family (one module per HF ``model_type``: ``gpt2.py``, ``llama.py``, ...) says three things:

- how an HF ``config.json`` becomes a ``ModelConfig`` and back, refusing with ``ConfigError`` (naming
  the field) whatever the backbone cannot compute;
- which litllm configs it exports (``matches``, then ``check_export``);
- a table of its tensors (ours, HF's, and how a tensor changes on the way), from which ``state.py``
  derives both directions of the weight mapping.

Adding a family is one new module with a ``Family`` subclass decorated with ``@register``, imported
by the package's ``__init__``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from litllm.errors import ConfigError
from litllm.interop.convert.hf_files import HF_CONFIG
from litllm.model.config import ModelConfig


@dataclass(frozen=True)
class Tensor:
    """One row of a family's tensor table: our name and the HF name(s) of the same weights.

    Several HF names are concatenated along dim 0 into ours (Llama's separate q/k/v into our fused
    ``qkv``); ``sizes`` are then each part's rows, to split ours again on export. ``transpose``: HF
    stores the transpose of ours (GPT-2's ``Conv1D``).
    """

    ours: str
    hf: tuple[str, ...]
    sizes: tuple[int, ...] = ()
    transpose: bool = False


def params(
    ours: str, hf: str | tuple[str, ...], bias: bool, sizes: tuple[int, ...] = (), transpose: bool = False
) -> list[Tensor]:
    """The rows for a layer's weight and, with ``bias``, its bias (1-D, so never transposed)."""
    names = (hf,) if isinstance(hf, str) else hf
    rows = [Tensor(f"{ours}.weight", tuple(f"{h}.weight" for h in names), sizes, transpose)]
    if bias:
        rows.append(Tensor(f"{ours}.bias", tuple(f"{h}.bias" for h in names), sizes))
    return rows


class Family(ABC):
    """One HF architecture: its config fields, which litllm configs it exports, and its tensor table."""

    model_type: ClassVar[str]
    """HF's ``model_type`` in ``config.json``: the registry key."""
    architecture: ClassVar[str]
    """HF's model class, written to ``architectures`` on export."""
    export_rank: ClassVar[int]
    """Families are asked whether they export a config in this order: the most specific marker first."""
    hf_layer: ClassVar[str]
    """HF's prefix of layer ``i``'s tensors, with ``{}`` for ``i`` (ours is always ``blocks.{i}.``)."""
    hf_prefix: ClassVar[str] = ""
    """Written before every HF backbone name on export; removed, where present, on import."""
    buffers: ClassVar[tuple[str, ...]] = ()
    """``fnmatch`` patterns of HF tensors that are buffers, not weights: dropped on import."""

    @abstractmethod
    def config_from_hf(self, hf: dict[str, Any], where: str) -> ModelConfig:
        """The ``ModelConfig`` of an HF ``config.json`` of this family; ``where`` prefixes errors."""

    @abstractmethod
    def config_to_hf(self, config: ModelConfig) -> dict[str, Any]:
        """This family's fields of an HF ``config.json`` (``config_to_hf`` adds the common ones)."""

    @abstractmethod
    def matches(self, config: ModelConfig) -> bool:
        """Whether ``config`` carries this family's marker, so that it exports as this family."""

    @abstractmethod
    def check_export(self, config: ModelConfig) -> None:
        """Raise ``ConfigError`` naming a field of a matching ``config`` that this family cannot express."""

    @abstractmethod
    def top_tensors(self, config: ModelConfig) -> list[Tensor]:
        """The rows outside the layers (the output head is common to all families: see ``state.py``)."""

    @abstractmethod
    def layer_tensors(self, config: ModelConfig) -> list[Tensor]:
        """The rows of one layer, relative to ``blocks.{i}.`` and ``hf_layer``."""

    def tensors(self, config: ModelConfig) -> list[Tensor]:
        """The whole table for ``config``: top-level rows, then each layer's."""
        table = self.top_tensors(config)
        for i in range(config.n_layer):
            ours, hf = f"blocks.{i}.", self.hf_layer.format(i)
            for row in self.layer_tensors(config):
                table.append(dataclasses.replace(row, ours=ours + row.ours, hf=tuple(hf + h for h in row.hf)))
        return table


FAMILIES: dict[str, Family] = {}
"""HF ``model_type`` -> its family; filled by ``@register`` as the family modules are imported."""

F = TypeVar("F", bound=type[Family])


def register(cls: F) -> F:
    """Class decorator: put one instance of the family in ``FAMILIES``."""
    FAMILIES[cls.model_type] = cls()
    return cls


def get_family(model_type: Any, where: str = HF_CONFIG) -> Family:
    """The family of an HF ``model_type``; ``ConfigError`` names the supported ones."""
    if model_type not in FAMILIES:
        raise ConfigError(
            f"{where}: model_type {model_type!r} is not supported; convertible: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def family_for(config: ModelConfig) -> Family:
    """The family that computes what ``config`` computes; ``ConfigError`` names the field that has none."""
    if config.logit_softcap is not None:
        raise ConfigError(f"logit_softcap={config.logit_softcap} has no Hugging Face counterpart in litllm's families")
    for family in sorted(FAMILIES.values(), key=lambda f: f.export_rank):
        if family.matches(config):
            family.check_export(config)
            return family
    raise ConfigError(f"position={config.position!r} has no Hugging Face counterpart")


# ---------------------------------------------------------------------------------------------- configs
def config_from_hf(hf: dict[str, Any], where: str = HF_CONFIG) -> ModelConfig:
    """The ``ModelConfig`` of an HF ``config.json``; ``ConfigError`` names a field the backbone cannot express."""
    return get_family(hf.get("model_type"), where).config_from_hf(hf, where)


def hf_model_type(config: ModelConfig) -> str:
    """The HF architecture that computes what ``config`` computes; ``ConfigError`` names the field that has none."""
    return family_for(config).model_type


def config_to_hf(config: ModelConfig, eot_id: int | None = None, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """An HF ``config.json`` for ``config``."""
    family = family_for(config)
    common = {
        "architectures": [family.architecture],
        "model_type": family.model_type,
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
    }
    return {**common, **family.config_to_hf(config)}


# ---------------------------------------------------------------------------------------------- helpers for families
def unsupported(where: str, field: str, value: Any, why: str) -> ConfigError:
    """The error for an HF config field the backbone cannot express."""
    return ConfigError(f"{where}: unsupported {field}={value!r}: {why}")


def reject_quantized(hf: dict[str, Any], where: str) -> None:
    """Quantized checkpoints store other tensors than the weights the mapping expects."""
    if hf.get("quantization_config"):
        raise unsupported(
            where,
            "quantization_config",
            hf["quantization_config"].get("quant_method"),
            "convert a full-precision checkpoint",
        )


def expect(config: ModelConfig, fields: dict[str, Any], arch: str) -> None:
    """Raise ``ConfigError`` for the first of ``fields`` whose value in ``config`` ``arch`` cannot express."""
    for field, value in fields.items():
        if getattr(config, field) != value:
            raise ConfigError(
                f"{field}={getattr(config, field)!r} cannot be exported as {arch} (which needs {field}={value!r})"
            )
