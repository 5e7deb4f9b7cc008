"""Weight-only int8 quantization of a loaded model's Linear layers, for inference (``--quantize int8``).

Every ``nn.Linear`` (attention and MLP projections, and the output head) keeps its weight as int8 with
one scale per output row (torchao's ``Int8WeightOnlyConfig``); activations, embeddings, norms and the
key/value cache stay in the model's dtype (float32 or bfloat16). The weights take a quarter of their
float32 memory. A head tied to the token embedding is untied by this: the embedding keeps its float
table and the head gets its own int8 copy.

torchao is an optional dependency (``pip install -e ".[quantize]"``); it is imported only here.
"""

from __future__ import annotations

import logging

import torch

from litllm.errors import ConfigError

QUANTIZE_CHOICES = ("int8",)

# torchao logs a warning per CUDA-only extension it cannot load on a CPU-only torch: not our user's concern.
logging.getLogger("torchao").setLevel(logging.ERROR)


def _torchao_quantize():
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as err:
        raise ConfigError(f'--quantize int8 needs torchao ({err}): pip install -e ".[quantize]"') from None
    return quantize_, Int8WeightOnlyConfig


def quantize_model(model: torch.nn.Module, method: str | None) -> torch.nn.Module:
    """Quantize ``model``'s Linear weights in place by ``method`` (``"int8"``, or None for no change); return it."""
    if method is None:
        return model
    if method not in QUANTIZE_CHOICES:
        raise ConfigError(f"--quantize {method!r} is not supported: choose one of {', '.join(QUANTIZE_CHOICES)}")
    quantize_, Int8WeightOnlyConfig = _torchao_quantize()
    # set_inductor_config=False: torchao would otherwise change global torch.compile settings on import of a model.
    quantize_(model, Int8WeightOnlyConfig(set_inductor_config=False))
    return model


def linear_weight_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the Linear layers' weights (int8 data plus scales once quantized): what decoding streams."""
    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            weight = module.weight
            inner = [getattr(weight, name) for name in ("qdata", "scale") if hasattr(weight, name)]
            for t in inner or [weight]:
                total += t.numel() * t.element_size()
    return total
