"""Weight-only int8 quantization of a loaded model's Linear layers, for inference (``--quantize int8``).

Every ``nn.Linear`` (attention and MLP projections, and the output head) becomes an ``Int8Linear``: its
weight stored as int8 with one scale per output row (symmetric: the row's largest magnitude maps to
127); activations, embeddings, norms and the key/value cache stay in the model's dtype (float32 or
bfloat16). The weights take a quarter of their float32 memory. A head tied to the token embedding is
untied by this: the embedding keeps its float table and the head gets its own int8 copy.

The matrix product is PyTorch's own weight-only int8 kernel, ``torch.ops.aten._weight_int8pack_mm``
(the one torchao's int8 layers reach through ``torch.compile`` on CPU): it reads the int8 weight and
scales each output, without converting the weight to the activation dtype first. Why not torchao's
layers in eager mode: they convert the whole weight at every call, which made int8 decoding 3x
slower than float32 on CPU (``benchmarks/generate_throughput.py``). The kernel is used on CPU for
layers whose input width is a multiple of 16 (every preset's): with bfloat16 inputs of other widths it
crashes the process on AVX512-BF16 CPUs (seen with widths 24, 40, 72, 100 and more than one row). Other
layers and devices (the kernel is CPU-only in this PyTorch) convert the weight at every call: correct,
memory-saving, not faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from litllm.errors import ConfigError

QUANTIZE_CHOICES = ("int8",)


class Int8Linear(nn.Module):
    """A ``nn.Linear`` whose weight is int8 with one scale per output row (``weight ~ int8 * scale[:, None]``).

    Args:
        linear: The layer to quantize (its weight and bias are read, not kept).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        # the kernel takes the scales in the activations' dtype: round with the scale as it will be stored
        scale = (weight.abs().amax(dim=1).clamp(min=1e-12) / 127).to(linear.weight.dtype)
        levels = torch.round(weight / scale.float()[:, None]).clamp(-127, 127)
        self.register_buffer("weight_int8", levels.to(torch.int8))
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self._kernel = self.in_features % 16 == 0  # see the module documentation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).contiguous()
        scale = self.scale.to(x.dtype)
        out = None
        if self._kernel and x.device.type == "cpu":
            out = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, scale)
        if out is None:
            out = F.linear(flat, self.weight_int8.to(x.dtype)) * scale
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_model(model: nn.Module, method: str | None) -> nn.Module:
    """Quantize ``model``'s Linear weights in place by ``method`` (``"int8"``, or None for no change); return it."""
    if method is None:
        return model
    if method not in QUANTIZE_CHOICES:
        raise ConfigError(f"--quantize {method!r} is not supported: choose one of {', '.join(QUANTIZE_CHOICES)}")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, Int8Linear(child))
    return model


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes held by the Linear layers' weights (int8 data plus scales once quantized): what decoding streams."""
    total = 0
    for module in model.modules():
        if isinstance(module, Int8Linear):
            tensors = [module.weight_int8, module.scale]
        elif isinstance(module, nn.Linear):
            tensors = [module.weight]
        else:
            continue
        total += sum(t.numel() * t.element_size() for t in tensors)
    return total
