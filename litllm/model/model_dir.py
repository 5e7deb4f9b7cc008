"""The model directory: what a finished run leaves behind and what every other verb reads.

    <dir>/model.safetensors   weights (a tied head is stored once, as the embedding)
    <dir>/config.json         ModelConfig fields
    <dir>/tokenizer.json      the tokenizer the model was trained with
    <dir>/template.json       the prompt template of a finetuned model (absent after pretraining)

``ModelDir`` is the only code that knows these names: training starts from one (``model.init_from``),
the data module takes its tokenizer and template, the export callback and ``convert`` write one, and
``generate``, ``chat``, ``evaluate`` and the lm-eval adapter load one with ``ModelDir(path).load()``.
Every problem with a directory (missing, corrupt, non-finite or mismatched files) is one
``CheckpointError`` naming the file or tensor. Weights are read only through safetensors, which cannot
execute code. Importing this module does not import torch (``litllm prepare`` workers read tokenizers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from litllm.errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.templates import Template
    from litllm.model.tokenizer import Tokenizer


class ModelDir:
    """A model directory on disk: read, validate and write its files.

    Args:
        path: The directory (it need not exist yet when writing).
    """

    WEIGHTS = "model.safetensors"
    CONFIG = "config.json"
    TOKENIZER = "tokenizer.json"
    TEMPLATE = "template.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:  # usable wherever a path is (``Path(model_dir)``, ``open``)
        return str(self.path)

    # ------------------------------------------------------------------ files
    @property
    def weights_file(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def tokenizer_file(self) -> Path:
        return self.path / self.TOKENIZER

    @property
    def template_file(self) -> Path:
        return self.path / self.TEMPLATE

    @classmethod
    def tokenizer_path(cls, path: str | Path) -> Path:
        """``path`` itself for a tokenizer file, the tokenizer inside it for a model directory."""
        path = Path(path)
        return path / cls.TOKENIZER if path.is_dir() else path

    def check(self, need_tokenizer: bool = True) -> ModelDir:
        """Raise one clear error if the directory or one of its required files is missing."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"model directory not found: {self.path}")
        needed = [self.CONFIG, self.WEIGHTS] + ([self.TOKENIZER] if need_tokenizer else [])
        for name in needed:
            if not (self.path / name).is_file():
                raise FileNotFoundError(f"{self.path} is not a complete model directory: missing {name}")
        return self

    # ------------------------------------------------------------------ reading
    def config(self) -> ModelConfig:
        from litllm.model.config import ModelConfig

        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a model directory: missing {self.CONFIG}")
        return ModelConfig.from_json(self.config_file)

    def tokenizer(self) -> Tokenizer:
        from litllm.model.tokenizer import Tokenizer

        return Tokenizer.from_file(self.tokenizer_file)

    def template(self) -> Template | None:
        """The prompt template the model was finetuned with, or None for a model that never was."""
        from litllm.model.templates import get_template

        if not self.template_file.is_file():
            return None
        try:
            return get_template(json.loads(self.template_file.read_text())["name"])
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{self.template_file}: not a template file ({err})") from None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as saved (a tied head appears once, as the embedding), checked to be finite."""
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not self.weights_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a complete model directory: missing {self.WEIGHTS}")
        try:
            state = load_file(str(self.weights_file))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{self.weights_file}: not a readable safetensors file ({err})") from None
        for name, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(
                    f"{self.weights_file}: tensor {name!r} holds NaN or infinite values (the run that wrote "
                    "it diverged); use an earlier checkpoint"
                )
        return state

    def load_weights(self, model: GPT, strict: bool = True) -> None:
        """Load the weights into ``model``, naming any tensor whose name or shape differs."""
        state = self.state_dict()
        expected = _unique_shapes(model)
        if model.config.tie_embeddings:
            state.pop("lm_head.weight", None)
        differ = [n for n in expected if n in state and tuple(state[n].shape) != expected[n]]
        if differ:
            name = differ[0]
            raise CheckpointError(
                f"{self.weights_file}: tensor {name!r} has shape {tuple(state[name].shape)} but the model expects "
                f"{expected[name]} ({len(differ)} tensor(s) differ: the checkpoint was made for a different model shape)"
            )
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"{self.weights_file}: missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}"
            )
        model.load_state_dict(state, strict=False)

    def load(self, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> tuple[GPT, Tokenizer]:
        """Build the model the directory describes, load its weights and its tokenizer (in eval mode)."""
        import torch

        from litllm.model.gpt import GPT

        self.check()
        config = self.config()
        with torch.device(device):
            model = GPT(config)
        self.load_weights(model)
        if dtype is not None:
            model = model.to(dtype)
        tokenizer = self.tokenizer()
        if tokenizer.vocab_size > config.vocab_size:
            raise CheckpointError(
                f"{self.path}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
                f"{config.vocab_size} embeddings"
            )
        return model.eval(), tokenizer

    # ------------------------------------------------------------------ writing
    def save(
        self,
        model: GPT,
        tokenizer: Tokenizer | None = None,
        template: Template | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> ModelDir:
        """Write weights, config, and the tokenizer and template when given (the directory is created).

        ``state_dict`` replaces the model's own (e.g. gathered from FSDP shards). Weights are written to a
        temporary name and renamed, so a crash never leaves a truncated ``model.safetensors``.
        """
        import torch
        from safetensors.torch import save_file

        state = model.state_dict() if state_dict is None else dict(state_dict)
        if model.config.tie_embeddings:
            state.pop("lm_head.weight", None)  # the same storage as wte.weight
        for name, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(f"not writing {self.path}: weight {name!r} holds NaN or infinite values")
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_file.with_name(self.WEIGHTS + ".tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp), metadata={"format": "pt"})
        tmp.chmod(_file_mode())  # safetensors creates 0600; others sharing the model directory must read it
        tmp.replace(self.weights_file)
        self.save_config(model.config)
        if tokenizer is not None:
            self.save_tokenizer(tokenizer)
        if template is not None:
            self.save_template(template)
        return self

    def save_config(self, config: ModelConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        config.to_json(self.config_file)

    def save_tokenizer(self, tokenizer: Tokenizer) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tokenizer.save(self.tokenizer_file)

    def save_template(self, template: Template) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.template_file.write_text(json.dumps({"name": template.name}) + "\n")


def _file_mode() -> int:
    """The mode a new file gets under this process's umask (as ``open`` would create it)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _unique_shapes(model: GPT) -> dict[str, tuple[int, ...]]:
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes
