"""Parameter-efficient finetuning: LoRA through ``peft``, 4-bit NF4 base weights through ``bitsandbytes``.

``apply_lora`` wraps the backbone in a ``peft.PeftModel`` (only the low-rank adapters train);
``quantize_4bit`` first swaps the frozen ``nn.Linear`` layers of the blocks for ``bnb.nn.Linear4bit``
(QLoRA). ``merge_lora`` folds an adapter into full-precision base weights for export.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn as nn

from litllm.errors import ConfigError
from litllm.model.gpt import GPT

LORA_TARGETS = ("qkv", "proj", "gate", "up", "down", "lm_head")
DEFAULT_LORA_TARGETS = ("qkv", "proj")
"""The layers LoRA adapts when a recipe names none (``model.lora_targets``)."""
"""Linear layers LoRA can target: attention (qkv, proj), MLP (gate, up, down) and the output head."""


def linear_names(model: nn.Module) -> list[str]:
    """Distinct short names (last path component) of the Linear layers in ``model``."""
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    return sorted(names)


def check_targets(model: nn.Module, targets: Iterable[str]) -> list[str]:
    targets = list(targets)
    available = linear_names(model)
    unknown = [t for t in targets if t not in available]
    if unknown or not targets:
        raise ConfigError(f"LoRA target(s) {unknown or targets} match no Linear layer; the model has {available}")
    return targets


def quantize_4bit(model: GPT, quant_type: str = "nf4", compute_dtype: torch.dtype = torch.float32) -> GPT:
    """Replace the Linear layers inside the transformer blocks by frozen 4-bit ``Linear4bit`` layers.

    Embeddings, norms and the (possibly tied) head stay in full precision. Works on CPU with
    bitsandbytes >= 0.45; the weights are quantized when the layer is moved to its device.
    """
    import bitsandbytes as bnb

    for block in model.blocks:
        for parent in block.modules():
            for child_name, child in list(parent.named_children()):
                if not isinstance(child, nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=compute_dtype,
                    quant_type=quant_type,
                    device="meta",
                )
                # On CPUs with AVX512-BF16, bitsandbytes repacks the weight for a faster inference kernel at
                # the first forward pass in eval mode (validation) and keeps that layout when training
                # resumes: the kernel has no backward (gradients to earlier layers stop) and crashes on a
                # bias. Training needs the ordinary layout throughout.
                q.support_avx512bf16_for_cpu = False
                q.weight = bnb.nn.Params4bit(child.weight.data.to("cpu"), requires_grad=False, quant_type=quant_type)
                if child.bias is not None:
                    q.bias = nn.Parameter(child.bias.data, requires_grad=False)
                setattr(parent, child_name, q.to(child.weight.device))
    # peft reads this flag to treat the base as quantized (merging then dequantizes correctly)
    model.is_loaded_in_4bit = True
    return model


def apply_lora(model: GPT, r: int, alpha: int, dropout: float, targets: Iterable[str]):
    """Freeze ``model`` and add LoRA adapters of rank ``r`` to the ``targets`` layers; returns a PeftModel."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=check_targets(model, targets), bias="none"
    )
    return get_peft_model(model, config)


def adapt(
    model: GPT,
    method: str,
    r: int,
    alpha: int,
    dropout: float,
    targets: Iterable[str],
    quant_type: str = "nf4",
    bf16_compute: bool = False,
):
    """The model to train for ``method``: LoRA adapters (``lora``), on a 4-bit frozen base for ``qlora``."""
    if method == "qlora":
        model = quantize_4bit(model, quant_type, torch.bfloat16 if bf16_compute else torch.float32)
    return apply_lora(model, r, alpha, dropout, targets)


def merge_lora(peft_model, base: GPT | None = None) -> GPT:
    """A plain ``GPT`` with the adapter folded into its weights; ``peft_model`` is left untouched.

    With ``base`` (full-precision weights of the starting model) the adapter weights are loaded onto a
    fresh LoRA wrapping of it and merged there: the way to get a full-precision model out of QLoRA.
    """
    from peft import get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    if base is None:
        return _untie_adapted_head(copy.deepcopy(peft_model)).merge_and_unload()
    adapter_state = get_peft_model_state_dict(peft_model)
    fresh = get_peft_model(base, copy.deepcopy(peft_model.peft_config["default"]))
    set_peft_model_state_dict(fresh, {k: v.detach().float().cpu() for k, v in adapter_state.items()})
    return _untie_adapted_head(fresh).merge_and_unload()


def _untie_adapted_head(peft_model):
    """Give an adapted head its own weight before merging, when it shares it with the embedding.

    With a tied head (GPT-2 style) LoRA on ``lm_head`` changes only the output projection during
    training; merging into the shared matrix would also change every input embedding. The merged
    model therefore gets an untied head (its config says so) and keeps the embedding as it was.
    """
    model = peft_model.get_base_model()
    head = model.lm_head
    if model.config.tie_embeddings and hasattr(head, "base_layer"):
        head.base_layer.weight = nn.Parameter(head.base_layer.weight.detach().clone())
        model.config.tie_embeddings = False
    return peft_model


def save_adapter(peft_model, directory: str | Path) -> Path:
    """Write the PEFT adapter directory (adapter_config.json + adapter_model.safetensors)."""
    peft_model.save_pretrained(str(directory), safe_serialization=True)
    return Path(directory)


def weight_bytes(module: nn.Module) -> int:
    """Bytes held by parameters and buffers (quantized weights count at their packed size)."""
    seen, total = set(), 0
    for t in [*module.parameters(), *module.buffers()]:
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    for m in module.modules():  # 4-bit layers keep their scales in a quant_state beside the weight
        state = getattr(getattr(m, "weight", None), "quant_state", None)
        if state is not None and getattr(state, "absmax", None) is not None:
            total += state.absmax.numel() * state.absmax.element_size()
    return total


def grow_vocabulary(model: GPT, size: int) -> None:
    """Enlarge the embedding table (and an untied head) to ``size`` rows for tokens a template added.

    New rows start at the mean of the existing embeddings, a neutral point the finetuning moves from.
    """
    old = model.wte.weight.data
    new = old.mean(dim=0, keepdim=True).repeat(size - old.size(0), 1)
    model.wte = torch.nn.Embedding(size, old.size(1), device=old.device, dtype=old.dtype)
    model.wte.weight.data = torch.cat([old, new])
    if model.config.tie_embeddings:
        model.lm_head = torch.nn.Linear(old.size(1), size, bias=False, device=old.device, dtype=old.dtype)
        model.lm_head.weight = model.wte.weight
    else:
        head = model.lm_head.weight.data
        model.lm_head = torch.nn.Linear(old.size(1), size, bias=False, device=old.device, dtype=old.dtype)
        model.lm_head.weight.data = torch.cat([head, head.mean(dim=0, keepdim=True).repeat(size - head.size(0), 1)])
    model.config.vocab_size = size
