"""Hugging Face's side of a checkpoint directory: its file names, its weights and tokenizer, the files copied along.

The names below are Hugging Face's; litllm's own model directory is ``litllm.model.model_dir``'s
(some names coincide, e.g. ``config.json``, but the files hold different things).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from litllm.errors import CheckpointError
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import Tokenizer

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
"""Sharded safetensors: ``weight_map`` names the shard of every tensor."""
HF_TORCH_WEIGHTS = "pytorch_model.bin"
HF_TOKENIZER = "tokenizer.json"
HF_VOCAB, HF_MERGES = "vocab.json", "merges.txt"
"""GPT-2's original byte-level BPE files, where a checkpoint has no ``tokenizer.json``."""
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
HF_SPECIAL_TOKENS = "special_tokens_map.json"
HF_GENERATION_CONFIG = "generation_config.json"

TOKENIZER_EXTRAS = (HF_TOKENIZER_CONFIG, HF_SPECIAL_TOKENS, HF_GENERATION_CONFIG, ModelDir.TEMPLATE)
"""Copied along in both directions, so that a round trip keeps special tokens and chat templates."""


def read_hf_weights(hf_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    """All tensors of an HF checkpoint directory and the file(s) they came from."""
    index = hf_dir / HF_WEIGHTS_INDEX
    if (hf_dir / HF_WEIGHTS).is_file():
        files = [hf_dir / HF_WEIGHTS]
    elif index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = [hf_dir / name for name in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise CheckpointError(f"{index}: shard {f.name} is missing")
    elif (hf_dir / HF_TORCH_WEIGHTS).is_file():
        path = hf_dir / HF_TORCH_WEIGHTS
        # weights_only: a pickle may run code on load; this reads tensors and nothing else
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    else:
        raise CheckpointError(f"{hf_dir}: no {HF_WEIGHTS}, {HF_WEIGHTS_INDEX} or {HF_TORCH_WEIGHTS}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as shard:
            for name in shard.keys():  # noqa: SIM118 (safe_open is not a dict)
                state[name] = shard.get_tensor(name)
    return state, str(files[0] if len(files) == 1 else index)


def tokenizer_from_hf(hf_dir: Path) -> Tokenizer:
    """The tokenizer of an HF directory: ``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt``."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    if (hf_dir / HF_TOKENIZER).is_file():
        backend = HFTokenizer.from_file(str(hf_dir / HF_TOKENIZER))
    elif (hf_dir / HF_VOCAB).is_file() and (hf_dir / HF_MERGES).is_file():
        backend = HFTokenizer(models.BPE.from_file(str(hf_dir / HF_VOCAB), str(hf_dir / HF_MERGES)))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
    else:
        raise CheckpointError(f"{hf_dir}: no tokenizer ({HF_TOKENIZER}, or {HF_VOCAB} + {HF_MERGES})")
    try:
        return Tokenizer(backend)  # generation needs an end-of-text token it can recognise
    except ValueError as err:
        raise CheckpointError(f"{hf_dir}: {err}") from None


def copy_extras(src: Path, dst: Path) -> None:
    """Copy those of ``TOKENIZER_EXTRAS`` that ``src`` has to ``dst``."""
    for name in TOKENIZER_EXTRAS:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, the way ``transformers`` writes its own files."""
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_hf_tokenizer(hf_dir: Path, tokenizer: Tokenizer, block_size: int, extras_from: Path) -> None:
    """Write ``tokenizer`` for ``AutoTokenizer`` with the extras of ``extras_from``, and the configs they lack."""
    tokenizer.save(hf_dir / HF_TOKENIZER)
    copy_extras(extras_from, hf_dir)
    eot_id = tokenizer.eot_id
    if not (hf_dir / HF_TOKENIZER_CONFIG).is_file():
        tok_config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": tokenizer.eot_token,
            "bos_token": tokenizer.eot_token,
            "model_max_length": block_size,
            "clean_up_tokenization_spaces": False,
        }
        write_json(hf_dir / HF_TOKENIZER_CONFIG, tok_config)
    if not (hf_dir / HF_GENERATION_CONFIG).is_file():
        # transformers' generate() stops at end-of-text and pads with it, as `litllm generate` does.
        write_json(
            hf_dir / HF_GENERATION_CONFIG, {"bos_token_id": eot_id, "eos_token_id": eot_id, "pad_token_id": eot_id}
        )
