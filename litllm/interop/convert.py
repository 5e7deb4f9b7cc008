"""Hugging Face interop: ``litllm convert from-hf HF_DIR OUT_DIR`` and ``litllm convert to-hf DIR HF_DIR``.

Covered: GPT-2 (``GPT2LMHeadModel``) and the Llama family (``LlamaForCausalLM`` with grouped-query
attention, a tied or untied head and Llama-3.1 rotary scaling, ``MistralForCausalLM`` with its
sliding window, ``Qwen2ForCausalLM`` with biases on q/k/v only, ``Qwen3ForCausalLM`` with QK-norm). The mapping works on ``config.json`` and the
tensors alone, so ``transformers`` is not needed for either direction.

Weight facts the mapping relies on:
- GPT-2 stores its linear layers as ``Conv1D``: weights are (in, out), the transpose of ``nn.Linear``;
  queries, keys and values are one fused ``c_attn`` in that order, as in our ``qkv``.
- Llama-family checkpoints already use the "rotate half" rotary layout of ``litllm.model.gpt.apply_rope``,
  so q/k projections load without permutation; q, k and v are separate and are concatenated here.

An HF config the backbone cannot express raises ``ConfigError`` naming the field. Weights are read
from safetensors (one file or shards listed in ``model.safetensors.index.json``), or from
``pytorch_model.bin`` with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from litllm.errors import CheckpointError, ConfigError
from litllm.model.config import ROPE_SCALING_KEYS, ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import Tokenizer

CONFIG, TOKENIZER, WEIGHTS = ModelDir.CONFIG, ModelDir.TOKENIZER, ModelDir.WEIGHTS
LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3")
ARCHITECTURES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}
# Tokenizer files copied along in both directions, so that a round trip keeps special tokens and chat templates.
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "template.json")
_GPT2_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")


# ---------------------------------------------------------------------------------------------- configs
def config_from_hf(hf: dict[str, Any], where: str = "config.json") -> ModelConfig:
    """The ``ModelConfig`` of an HF ``config.json``; ``ConfigError`` names a field the backbone cannot express."""
    model_type = hf.get("model_type")
    if model_type == "gpt2":
        return _gpt2_config_from_hf(hf, where)
    if model_type in LLAMA_FAMILY:
        return _llama_config_from_hf(hf, where)
    raise ConfigError(
        f"{where}: model_type {model_type!r} is not supported; convertible: gpt2, {', '.join(LLAMA_FAMILY)}"
    )


def _unsupported(where: str, field: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{where}: unsupported {field}={value!r}: {why}")


def _gpt2_config_from_hf(hf: dict[str, Any], where: str) -> ModelConfig:
    act = hf.get("activation_function", "gelu_new")
    if act not in _GPT2_TANH_GELUS:
        raise _unsupported(
            where, "activation_function", act, f"the backbone's GELU is the tanh one ({_GPT2_TANH_GELUS})"
        )
    for field, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False)):
        if hf.get(field, ok) != ok:
            raise _unsupported(where, field, hf[field], "attention is scaled by 1/sqrt(head_dim) only")
    if hf.get("add_cross_attention"):
        raise _unsupported(where, "add_cross_attention", True, "the backbone is decoder-only")
    _reject_quantized(hf, where)
    return ModelConfig(
        name=hf.get("_name_or_path") or "gpt2-hf",
        vocab_size=hf["vocab_size"],
        block_size=hf.get("n_positions", 1024),
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        intermediate_size=hf.get("n_inner") or 4 * hf["n_embd"],
        position="learned",
        norm="layernorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        mlp="gelu",
        bias=True,
        tie_embeddings=hf.get("tie_word_embeddings", True),
    )


def _rope(hf: dict[str, Any], where: str) -> tuple[float, dict[str, float] | None]:
    """The rotary base and Llama-3.1 scaling (or None), from transformers 5's ``rope_parameters`` or 4's
    ``rope_theta``/``rope_scaling``."""
    params = {**(hf.get("rope_scaling") or {}), **(hf.get("rope_parameters") or {})}
    kind = params.get("rope_type") or params.get("type") or "default"
    if kind not in ("default", "llama3"):
        field = "rope_parameters.rope_type" if hf.get("rope_parameters") else "rope_scaling"
        raise _unsupported(where, field, kind, "the backbone has plain rotary positions or Llama-3.1 scaling")
    if params.get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0)) != 1.0:
        raise _unsupported(
            where, "partial_rotary_factor", hf.get("partial_rotary_factor"), "rotation covers full heads"
        )
    scaling = None
    if kind == "llama3":
        missing = [k for k in ROPE_SCALING_KEYS if k not in params]
        if missing:
            raise _unsupported(where, "rope_scaling", params, f"llama3 scaling without {missing}")
        scaling = {k: float(params[k]) for k in ROPE_SCALING_KEYS}
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0))), scaling


def _llama_config_from_hf(hf: dict[str, Any], where: str) -> ModelConfig:
    model_type = hf["model_type"]
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise _unsupported(where, "hidden_act", act, "the backbone's gated MLP is SwiGLU (silu)")
    _reject_quantized(hf, where)
    if model_type == "qwen2":
        bias, attn_bias = False, True  # Qwen2: biases on q/k/v, nowhere else
    elif model_type == "qwen3" and hf.get("attention_bias"):
        raise _unsupported(where, "attention_bias", True, "Qwen3 with q/k/v biases is not expressible with QK-norm")
    else:
        attention_bias, mlp_bias = bool(hf.get("attention_bias", False)), bool(hf.get("mlp_bias", False))
        if attention_bias != mlp_bias:
            field = "attention_bias" if attention_bias else "mlp_bias"
            raise _unsupported(where, field, True, "the backbone has biases in all linear layers or in none")
        bias = attn_bias = attention_bias
    window = None
    if model_type == "mistral":
        window = hf.get("sliding_window")
    elif model_type in ("qwen2", "qwen3") and hf.get("use_sliding_window"):
        layer_types = hf.get("layer_types") or []
        if (
            any(t != "sliding_attention" for t in layer_types)
            or hf.get("max_window_layers", 0) < hf["num_hidden_layers"]
        ):
            raise _unsupported(
                where, "layer_types", layer_types, "the backbone uses one attention window for all layers"
            )
        window = hf.get("sliding_window")
    n_head = hf["num_attention_heads"]
    rope_theta, rope_scaling = _rope(hf, where)
    return ModelConfig(
        name=hf.get("_name_or_path") or f"{model_type}-hf",
        vocab_size=hf["vocab_size"],
        block_size=hf.get("max_position_embeddings", 2048),
        n_layer=hf["num_hidden_layers"],
        n_head=n_head,
        n_kv_head=hf.get("num_key_value_heads") or n_head,
        n_embd=hf["hidden_size"],
        head_dim=hf.get("head_dim") or hf["hidden_size"] // n_head,
        intermediate_size=hf["intermediate_size"],
        position="rope",
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        qk_norm=model_type == "qwen3",  # Qwen3: per-head RMSNorm of queries and keys before the rotation
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        mlp="swiglu",
        bias=bias,
        attn_bias=attn_bias,
        sliding_window=window,
        tie_embeddings=hf.get("tie_word_embeddings", False),
    )


def _reject_quantized(hf: dict[str, Any], where: str) -> None:
    if hf.get("quantization_config"):
        raise _unsupported(
            where,
            "quantization_config",
            hf["quantization_config"].get("quant_method"),
            "convert a full-precision checkpoint",
        )


def hf_model_type(config: ModelConfig) -> str:
    """The HF architecture that computes what ``config`` computes; ``ConfigError`` names the field that has none."""
    if config.qk_norm:
        expected = {"position": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "attn_bias": False}
        _expect(config, {**expected, "sliding_window": None}, "qwen3")
        return "qwen3"
    if config.position == "learned":
        expected = {"norm": "layernorm", "mlp": "gelu", "bias": True, "attn_bias": True, "sliding_window": None}
        expected.update(n_kv_head=config.n_head, head_dim=config.n_embd // config.n_head)
        _expect(config, expected, "gpt2")
        return "gpt2"
    _expect(config, {"norm": "rmsnorm", "mlp": "swiglu"}, "llama")
    if config.attn_bias and not config.bias:
        _expect(config, {"sliding_window": None}, "qwen2")
        return "qwen2"
    if config.bias and not config.attn_bias:
        raise ConfigError("bias=True with attn_bias=False has no HF counterpart (llama: biases everywhere or nowhere)")
    if config.sliding_window is not None:
        _expect(config, {"bias": False}, "mistral")
        return "mistral"
    return "llama"


def _expect(config: ModelConfig, fields: dict[str, Any], arch: str) -> None:
    for field, value in fields.items():
        if getattr(config, field) != value:
            raise ConfigError(
                f"{field}={getattr(config, field)!r} cannot be exported as {arch} (which needs {field}={value!r})"
            )


def config_to_hf(config: ModelConfig, eot_id: int | None = None, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """An HF ``config.json`` for ``config``."""
    model_type = hf_model_type(config)
    common = {
        "architectures": [ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
    }
    if model_type == "gpt2":
        return {
            **common,
            "n_positions": config.block_size,
            "n_embd": config.n_embd,
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_inner": config.intermediate_size,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": config.norm_eps,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "scale_attn_weights": True,
        }
    hf = {
        **common,
        "hidden_size": config.n_embd,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_kv_head,
        "head_dim": config.head_dim,
        "max_position_embeddings": config.block_size,
        "hidden_act": "silu",
        "rms_norm_eps": config.norm_eps,
        # both spellings: transformers 5 reads rope_parameters, 4 reads rope_theta and rope_scaling
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "rope_theta": config.rope_theta,
        "attention_dropout": 0.0,
    }
    if config.rope_scaling is not None:
        if model_type != "llama":
            raise ConfigError(f"rope_scaling (Llama-3.1 style) has no counterpart in a {model_type} export")
        hf["rope_parameters"] = {"rope_type": "llama3", "rope_theta": config.rope_theta, **config.rope_scaling}
        hf["rope_scaling"] = {"rope_type": "llama3", **config.rope_scaling}
    if model_type == "llama":
        hf.update(attention_bias=config.bias, mlp_bias=config.bias)
    elif model_type == "mistral":
        hf.update(sliding_window=config.sliding_window)
    else:
        hf.update(use_sliding_window=False, sliding_window=None)
        if model_type == "qwen3":
            hf["attention_bias"] = False
    return hf


# ---------------------------------------------------------------------------------------------- weights
def _gpt2_names(config: ModelConfig) -> list[tuple[str, str, bool]]:
    """(ours, HF, transposed) for every GPT-2 tensor; HF names without the ``transformer.`` prefix."""
    names = [("wte.weight", "wte.weight", False), ("wpe.weight", "wpe.weight", False)]
    names += [("norm.weight", "ln_f.weight", False), ("norm.bias", "ln_f.bias", False)]
    for i in range(config.n_layer):
        ours, hf = f"blocks.{i}.", f"h.{i}."
        for o, h, t in (
            ("norm_1", "ln_1", False),
            ("attn.qkv", "attn.c_attn", True),
            ("attn.proj", "attn.c_proj", True),
            ("norm_2", "ln_2", False),
            ("mlp.up", "mlp.c_fc", True),
            ("mlp.down", "mlp.c_proj", True),
        ):
            names.append((f"{ours}{o}.weight", f"{hf}{h}.weight", t))
            names.append((f"{ours}{o}.bias", f"{hf}{h}.bias", False))
    return names


def _llama_names(config: ModelConfig) -> list[tuple[str, str]]:
    """(ours, HF) for every Llama-family tensor except the fused q/k/v."""
    names = [("wte.weight", "model.embed_tokens.weight"), ("norm.weight", "model.norm.weight")]
    for i in range(config.n_layer):
        ours, hf = f"blocks.{i}.", f"model.layers.{i}."
        names += [
            (f"{ours}norm_1.weight", f"{hf}input_layernorm.weight"),
            (f"{ours}norm_2.weight", f"{hf}post_attention_layernorm.weight"),
        ]
        if config.qk_norm:
            names += [(f"{ours}attn.q_norm.weight", f"{hf}self_attn.q_norm.weight")]
            names += [(f"{ours}attn.k_norm.weight", f"{hf}self_attn.k_norm.weight")]
        linears = [("attn.proj", "self_attn.o_proj"), ("mlp.gate", "mlp.gate_proj")]
        linears += [("mlp.up", "mlp.up_proj"), ("mlp.down", "mlp.down_proj")]
        for o, h in linears:
            names.append((f"{ours}{o}.weight", f"{hf}{h}.weight"))
            if config.bias:
                names.append((f"{ours}{o}.bias", f"{hf}{h}.bias"))
    return names


def state_from_hf(hf_state: dict[str, torch.Tensor], config: ModelConfig, model_type: str, where: str) -> dict:
    """Our state dict from HF tensors; ``CheckpointError`` names a missing or left-over tensor."""
    hf_state = dict(hf_state)
    take = _taker(hf_state, where)
    state: dict[str, torch.Tensor] = {}
    if model_type == "gpt2":
        # GPT2LMHeadModel prefixes "transformer."; GPT2Model checkpoints (e.g. the original gpt2) do not.
        hf_state.update({k.removeprefix("transformer."): hf_state.pop(k) for k in list(hf_state)})
        for k in [k for k in hf_state if k.endswith((".attn.bias", ".attn.masked_bias"))]:
            del hf_state[k]  # causal-mask buffers of old checkpoints, not weights
        for ours, hf, transposed in _gpt2_names(config):
            tensor = take(hf)
            state[ours] = tensor.t().contiguous() if transposed else tensor
    else:
        hf_state.pop("model.rotary_emb.inv_freq", None)
        for ours, hf in _llama_names(config):
            state[ours] = take(hf)
        for i in range(config.n_layer):
            prefix = f"model.layers.{i}.self_attn."
            state[f"blocks.{i}.attn.qkv.weight"] = torch.cat([take(f"{prefix}{p}_proj.weight") for p in "qkv"])
            if config.attn_bias:
                state[f"blocks.{i}.attn.qkv.bias"] = torch.cat([take(f"{prefix}{p}_proj.bias") for p in "qkv"])
    if config.tie_embeddings:
        hf_state.pop("lm_head.weight", None)  # tied: the same matrix as the embedding, when saved at all
    else:
        state["lm_head.weight"] = take("lm_head.weight")
    if hf_state:
        raise CheckpointError(f"{where}: tensors the converted model has no place for: {sorted(hf_state)[:5]}")
    return state


def _taker(hf_state: dict[str, torch.Tensor], where: str) -> Callable[[str], torch.Tensor]:
    def take(name: str) -> torch.Tensor:
        if name not in hf_state:
            raise CheckpointError(f"{where}: missing tensor {name!r}")
        return hf_state.pop(name)

    return take


def state_to_hf(state: dict[str, torch.Tensor], config: ModelConfig, model_type: str) -> dict[str, torch.Tensor]:
    """HF tensors from our state dict (a tied head is left out: HF ties it on load)."""
    out: dict[str, torch.Tensor] = {}
    if model_type == "gpt2":
        for ours, hf, transposed in _gpt2_names(config):
            out[f"transformer.{hf}"] = state[ours].t().contiguous() if transposed else state[ours]
    else:
        for ours, hf in _llama_names(config):
            out[hf] = state[ours]
        sizes = [
            config.n_head * config.head_dim,
            config.n_kv_head * config.head_dim,
            config.n_kv_head * config.head_dim,
        ]
        for i in range(config.n_layer):
            prefix = f"model.layers.{i}.self_attn."
            for kind in ("weight", "bias") if config.attn_bias else ("weight",):
                for p, part in zip("qkv", state[f"blocks.{i}.attn.qkv.{kind}"].split(sizes)):
                    out[f"{prefix}{p}_proj.{kind}"] = part.contiguous()
    if not config.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"]
    return out


def read_hf_weights(hf_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    """All tensors of an HF checkpoint directory and the file(s) they came from."""
    index = hf_dir / "model.safetensors.index.json"
    if (hf_dir / "model.safetensors").is_file():
        files = [hf_dir / "model.safetensors"]
    elif index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = [hf_dir / name for name in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise CheckpointError(f"{index}: shard {f.name} is missing")
    elif (hf_dir / "pytorch_model.bin").is_file():
        path = hf_dir / "pytorch_model.bin"
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    else:
        raise CheckpointError(f"{hf_dir}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as shard:
            for name in shard.keys():  # noqa: SIM118 (safe_open is not a dict)
                state[name] = shard.get_tensor(name)
    return state, str(files[0] if len(files) == 1 else index)


def _check_shapes(state: dict[str, torch.Tensor], config: ModelConfig, where: str) -> None:
    """Compare against a model built on the meta device (no memory): names the first tensor that does not fit."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()}
    if config.tie_embeddings:
        expected.pop("lm_head.weight")
    for name, shape in expected.items():
        if name not in state:
            raise CheckpointError(f"{where}: the converted weights lack {name!r}")
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"{where}: tensor {name!r} has shape {tuple(state[name].shape)}, the config implies {shape}"
            )


# ---------------------------------------------------------------------------------------------- tokenizers
def _tokenizer_from_hf(hf_dir: Path) -> Tokenizer:
    """The tokenizer of an HF directory: ``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt``."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    if (hf_dir / TOKENIZER).is_file():
        backend = HFTokenizer.from_file(str(hf_dir / TOKENIZER))
    elif (hf_dir / "vocab.json").is_file() and (hf_dir / "merges.txt").is_file():
        backend = HFTokenizer(models.BPE.from_file(str(hf_dir / "vocab.json"), str(hf_dir / "merges.txt")))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
    else:
        raise CheckpointError(f"{hf_dir}: no tokenizer (tokenizer.json, or vocab.json + merges.txt)")
    try:
        return Tokenizer(backend)  # generation needs an end-of-text token it can recognise
    except ValueError as err:
        raise CheckpointError(f"{hf_dir}: {err}") from None


def _hf_tokenizer_config(tokenizer: Tokenizer, block_size: int) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": tokenizer.eot_token,
        "bos_token": tokenizer.eot_token,
        "model_max_length": block_size,
        "clean_up_tokenization_spaces": False,
    }


# ---------------------------------------------------------------------------------------------- directions
def convert_from_hf(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the litllm model directory of an HF checkpoint directory; return ``out_dir``."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    config_path = hf_dir / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model directory: missing {CONFIG}")
    hf_config = json.loads(config_path.read_text())
    config = config_from_hf(hf_config, str(config_path))
    tokenizer = _tokenizer_from_hf(hf_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(f"{hf_dir}: tokenizer has {tokenizer.vocab_size} tokens, the model {config.vocab_size}")
    hf_state, where = read_hf_weights(hf_dir)
    state = state_from_hf(hf_state, config, hf_config["model_type"], where)
    _check_shapes(state, config, where)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_dir / WEIGHTS), metadata={"format": "pt"})
    config.to_json(out_dir / CONFIG)
    tokenizer.save(out_dir / TOKENIZER)
    for name in TOKENIZER_EXTRAS:
        if (hf_dir / name).is_file():
            shutil.copyfile(hf_dir / name, out_dir / name)
    return out_dir


def convert_to_hf(model_dir: str | Path, hf_dir: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write an HF checkpoint directory (``AutoModelForCausalLM`` / ``AutoTokenizer`` load it); return ``hf_dir``.

    Without a ``tokenizer.json`` in ``model_dir`` only the model is written.
    """
    # A model directory saved without a tokenizer (possible with save_model_dir) exports the model alone.
    model_dir, hf_dir = ModelDir(model_dir).check(need_tokenizer=False).path, Path(hf_dir)
    config = ModelConfig.from_json(model_dir / CONFIG)
    model_type = hf_model_type(config)
    state, where = read_hf_weights(model_dir)
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)
    _check_shapes(state, config, where)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    tokenizer = Tokenizer.from_file(model_dir / TOKENIZER) if (model_dir / TOKENIZER).is_file() else None
    hf_dir.mkdir(parents=True, exist_ok=True)
    out = state_to_hf(state, config, model_type)
    save_file({k: v.contiguous() for k, v in out.items()}, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    stored_dtype = next(iter(out.values())).dtype
    eot_id = tokenizer.eot_id if tokenizer is not None else None
    (hf_dir / CONFIG).write_text(json.dumps(config_to_hf(config, eot_id, stored_dtype), indent=2) + "\n")
    if tokenizer is None:
        return hf_dir
    tokenizer.save(hf_dir / TOKENIZER)
    for name in TOKENIZER_EXTRAS:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, hf_dir / name)
    if not (hf_dir / "tokenizer_config.json").is_file():
        tok_config = _hf_tokenizer_config(tokenizer, config.block_size)
        (hf_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    if not (hf_dir / "generation_config.json").is_file():
        # transformers' generate() stops at end-of-text and pads with it, as `litllm generate` does.
        generation = {"bos_token_id": eot_id, "eos_token_id": eot_id, "pad_token_id": eot_id}
        (hf_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    return hf_dir


def convert_main(args: list[str]) -> None:
    """``litllm convert from-hf HF_DIR OUT_DIR`` | ``litllm convert to-hf DIR HF_DIR [--dtype bfloat16]``."""
    parser = argparse.ArgumentParser(prog="litllm convert", description="Convert between litllm and Hugging Face.")
    sub = parser.add_subparsers(dest="direction", required=True)
    from_hf = sub.add_parser("from-hf", help="an HF checkpoint directory -> a litllm model directory")
    from_hf.add_argument("hf_dir")
    from_hf.add_argument("out_dir")
    to_hf = sub.add_parser("to-hf", help="a litllm model directory -> an HF checkpoint directory")
    to_hf.add_argument("model_dir")
    to_hf.add_argument("hf_dir")
    to_hf.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="cast the weights")
    opts = parser.parse_args(args)
    if opts.direction == "from-hf":
        out = convert_from_hf(opts.hf_dir, opts.out_dir)
        print(f"Converted {opts.hf_dir} -> {out} (litllm model directory)")
    else:
        dtype = getattr(torch, opts.dtype) if opts.dtype else None
        out = convert_to_hf(opts.model_dir, opts.hf_dir, dtype)
        print(f"Converted {opts.model_dir} -> {out} (Hugging Face directory)")
