"""Resuming under another layout: a checkpoint saved by one mesh continues under any other.

A sharded checkpoint (FSDP2, tensor or pipeline parallel) stores every tensor under its name in the
whole model, so PyTorch's distributed checkpoint already reshards a checkpoint whose tensors are only
cut differently (FSDP2 over 4 processes resumed over 2). Three things are more than a cut:

* Tensor parallelism keeps each fused qkv weight's rows in an order made for its group size
  (``litllm.parallel.tensor.qkv_rows``): rows saved under one size go back to the model's own order,
  then into the order of the resuming run's size.
* A pipeline stores the optimizer state keyed by parameter name (the flat form), a whole model by
  parameter group (the nested form), and one process's ``.ckpt`` file by position in the optimizer
  (the names are recorded next to it, ``OPTIMIZER_PARAMETERS``); and a pipeline's last stage holds its
  own copy of a tied head, whose state a whole model keeps under the embedding's name.
* A one-process or DDP run reads a file, not a directory (``AnyLayoutResume`` reads the directory for it).

``read_whole`` turns any of them into one form (whole tensors, the model's row order, optimizer state
keyed by parameter name); ``load_whole`` puts that into a model and its optimizers under any layout.
Resuming under another layout reads whole each tensor a process holds a part of, one at a time
(``litllm.parallel.stored``): a process's host memory holds its own parts plus one whole tensor, and a
pipeline stage reads its own stage's tensors only. A run resuming under the layout that saved it reads its
own shards only (``MeshStrategy.load_checkpoint``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import CheckpointIO

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.parallel.safe_load import SHARDED_META, is_sharded_checkpoint
from litllm.parallel.stored import StoredTensor, read_items, read_value, take_rows
from litllm.parallel.tensor import qkv_rows

OPTIMIZER_PARAMETERS = "optimizer_parameters"
"""Checkpoint key: for each optimizer, the names of its parameters, group by group, in the optimizer's order."""
WHOLE = "litllm_whole"
"""Set on a checkpoint ``read_whole`` returned: its optimizer states are in the flat form (named parameters)."""
QKV_ROWS = re.compile(r"attn\.qkv\.(base_layer\.|lora_B\.[^.]+\.)?(weight|bias)$")
"""The tensors whose rows tensor parallelism reorders (their optimizer states too; LoRA's base and B alike)."""


def saved_layout(checkpoint: dict[str, Any]) -> tuple[int, int]:
    """``(tensor_parallel_size, pipeline_parallel_size)`` of the run that saved ``checkpoint``."""
    return int(checkpoint.get("tensor_parallel_size", 1)), int(checkpoint.get("pipeline_parallel_size", 1))


# ---------------------------------------------------------------------------------------------- reading
def read_whole(path: Path, lazy: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path`` (sharded directory or file, any layout) in the form one process saves.

    ``state_dict``: whole tensors, qkv rows in the model's order; ``optimizer_states``: per optimizer
    ``{"state": {name: {key: value}}, "groups": {name: {setting: value}}}`` by parameter name; the rest
    (step, loops, schedulers, ``litllm``) as saved. With ``lazy``, a directory's big tensors are
    ``StoredTensor`` (read by ``load_whole`` when needed) and a file is memory-mapped.
    """
    checkpoint = _read_sharded(path, lazy) if path.is_dir() else _read_file(path, mmap=lazy)
    saved_config = checkpoint.get("litllm", {}).get("model_config")
    config = ModelConfig.from_dict(saved_config) if saved_config else None
    tp, _ = saved_layout(checkpoint)
    if tp > 1:
        if config is None:
            raise CheckpointError(f"{path} does not record its model config: it resumes only under its own layout")
        _reorder_rows(checkpoint, torch.argsort(qkv_rows(config, tp)), defer=lazy)
    if config is not None and config.tie_embeddings:
        _both_tied_names(checkpoint)
    # A compiled model's names hold "_orig_mod" where its one-process checkpoint saved them; PyTorch's
    # distributed state dicts leave it out: the plain names here.
    checkpoint["state_dict"] = {_plain(name): value for name, value in checkpoint["state_dict"].items()}
    for optimizer in checkpoint["optimizer_states"]:
        for part in ("state", "groups"):
            optimizer[part] = {_plain(name): value for name, value in optimizer[part].items()}
    checkpoint[WHOLE] = True
    return checkpoint


def _plain(name: str) -> str:
    return name.replace("._orig_mod", "")


def _read_sharded(path: Path, lazy: bool) -> dict[str, Any]:
    checkpoint = torch.load(path / SHARDED_META, map_location="cpu", weights_only=True)
    flat = read_items(path, lazy)
    model = {key.removeprefix("state_dict."): value for key, value in flat.items() if key.startswith("state_dict.")}
    checkpoint["state_dict"] = model
    optimizers = sorted(
        {key.split(".", 1)[0] for key in flat if key.startswith("optimizer_")},
        key=lambda name: int(name.removeprefix("optimizer_")),
    )
    checkpoint["optimizer_states"] = [_named_state(flat, f"{name}.") for name in optimizers]
    return checkpoint


def _named_state(flat: dict[str, Any], prefix: str) -> dict[str, dict]:
    """One optimizer's state from the flattened keys of a sharded checkpoint (flat or nested form)."""
    state: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    nested: dict[int, dict] = {}
    for key, value in flat.items():
        if not key.startswith(prefix):
            continue
        kind, rest = key[len(prefix) :].split(".", 1)
        name, setting = rest.rsplit(".", 1)
        if kind == "state":
            state.setdefault(name, {})[setting] = value
        elif name.isdigit():  # nested form: param_groups.<index>.<setting>, the names under "params"
            nested.setdefault(int(name), {})[setting] = value
        else:
            groups.setdefault(name, {})[setting] = value
    for group in nested.values():
        settings = {k: v for k, v in group.items() if k != "params"}
        for name in group["params"]:
            groups[name] = settings
    return {"state": state, "groups": groups}


def _read_file(path: Path, mmap: bool) -> dict[str, Any]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    names = checkpoint.get(OPTIMIZER_PARAMETERS)
    native = checkpoint.get("optimizer_states", [])
    if native and names is None:
        raise CheckpointError(
            f"{path} does not record which parameter each optimizer state belongs to (a one-file checkpoint of a "
            "sharded run, or one saved by an earlier litllm): it resumes only under the layout that saved it"
        )
    converted = []
    for state, groups in zip(native, names or []):
        named: dict[str, dict] = {"state": {}, "groups": {}}
        for group, group_names in zip(state["param_groups"], groups):
            settings = {k: v for k, v in group.items() if k != "params"}
            for index, name in zip(group["params"], group_names):
                named["groups"][name] = settings
                if index in state["state"]:
                    named["state"][name] = state["state"][index]
        converted.append(named)
    checkpoint["optimizer_states"] = converted
    return checkpoint


def _reorder_rows(checkpoint: dict[str, Any], order: torch.Tensor, defer: bool) -> None:
    """Take the rows of every reordered qkv tensor (and of its optimizer state) in ``order``; with ``defer``,
    when each is read (``StoredTensor``), not now."""
    for name, tensor in checkpoint["state_dict"].items():
        if QKV_ROWS.search(name):
            checkpoint["state_dict"][name] = take_rows(tensor, order, defer)
    for optimizer in checkpoint["optimizer_states"]:
        for name, state in optimizer["state"].items():
            if QKV_ROWS.search(name):
                for key, value in state.items():
                    has_rows = isinstance(value, (torch.Tensor, StoredTensor)) and value.dim() > 0
                    if has_rows and value.size(0) == order.numel():
                        state[key] = take_rows(value, order, defer)


def _both_tied_names(checkpoint: dict[str, Any]) -> None:
    """A tied head under both names: a whole model keeps its state under the embedding's, a pipeline's last
    stage under the head's own (its copy); either may resume as the other."""
    model = checkpoint["state_dict"]
    for name in [n for n in model if n.endswith("wte.weight")]:
        head = name[: -len("wte.weight")] + "lm_head.weight"
        model.setdefault(head, model[name])
        for optimizer in checkpoint["optimizer_states"]:
            for part in ("state", "groups"):
                if name in optimizer[part]:
                    optimizer[part].setdefault(head, optimizer[part][name])
                elif head in optimizer[part]:
                    optimizer[part][name] = optimizer[part][head]


# ---------------------------------------------------------------------------------------------- loading
def load_whole(
    module: torch.nn.Module, optimizers: list, checkpoint: dict[str, Any], tensor_parallel_size: int
) -> None:
    """Put a ``read_whole`` checkpoint into ``module`` (any layout: plain, FSDP2, tensor-parallel, one pipeline
    stage) and its ``optimizers``, each process taking the parts it holds."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict

    if tensor_parallel_size > 1:
        config = ModelConfig.from_dict(checkpoint["litllm"]["model_config"])
        _reorder_rows(checkpoint, qkv_rows(config, tensor_parallel_size), defer=True)  # read below, one by one
    saved = checkpoint["state_dict"]
    own = get_model_state_dict(module)
    # LoRA, QLoRA and DPO checkpoints hold what trains (the rest is model.init_from's, already loaded).
    strict = getattr(module, "strict_loading", True)
    needed = own if strict else {_plain(name) for name, p in module.named_parameters() if p.requires_grad}
    missing = [name for name in needed if name not in saved]
    if missing:
        raise CheckpointError(f"the checkpoint has no tensor {missing[0]!r} ({len(missing)} missing): another model")
    # Tensor by tensor: each read whole (if not yet), this process's part kept, the whole let go.
    local = {name: _like(read_value(saved[name]), now) for name, now in own.items() if name in saved}
    set_model_state_dict(module, local, options=StateDictOptions(strict=strict))
    del local  # (this process's copy, loaded: not held while the optimizer state is read)
    for optimizer, named in zip(optimizers, checkpoint["optimizer_states"]):
        load_optimizer(module, optimizer, named)


def load_optimizer(module: torch.nn.Module, optimizer: torch.optim.Optimizer, named: dict[str, dict]) -> None:
    """Set ``optimizer`` (of ``module``'s parameters, any layout) from a state keyed by parameter name."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    optimizer = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer wraps the torch one
    options = StateDictOptions(flatten_optimizer_state_dict=True)
    optimizer.zero_grad(set_to_none=True)  # (PyTorch creates the empty states only for parameters without one)
    local = get_optimizer_state_dict(module, optimizer, options=options)
    for key, now in local.items():
        kind, rest = key.split(".", 1)
        name, setting = rest.rsplit(".", 1)
        part = named["state" if kind == "state" else "groups"]
        if name not in part or setting not in part[name]:
            raise CheckpointError(f"the checkpoint has no optimizer {kind} {setting!r} for {name!r}")
        local[key] = _like(read_value(part[name][setting]), now)
    set_optimizer_state_dict(module, optimizer, optim_state_dict=local, options=options)


def _like(whole: Any, now: Any) -> Any:
    """``whole`` (a whole tensor, or a setting) as this process holds ``now``: its shard of a DTensor."""
    if not isinstance(now, torch.Tensor):
        return whole
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(now, DTensor):  # every process has the whole tensor: each takes its part, no communication
        whole = whole.to(device=now.device, dtype=now.dtype)
        part = distribute_tensor(whole, now.device_mesh, now.placements, src_data_rank=None)
        # A row shard is a view of the whole tensor: a copy lets the whole one go.
        local = part.to_local().clone()
        return DTensor.from_local(local, now.device_mesh, now.placements, shape=part.shape, stride=part.stride())
    return whole.to(device=now.device, dtype=now.dtype).clone()


# ---------------------------------------------------------------------------------------------- Lightning
class _ReadsShardedCheckpoints(CheckpointIO):
    """The strategy's checkpoint I/O, reading a sharded checkpoint directory whole (``read_whole``)."""

    def __init__(self, inner: CheckpointIO, module: L.LightningModule) -> None:
        self.inner, self.module = inner, module

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        if not is_sharded_checkpoint(Path(path)):
            checkpoint = self.inner.load_checkpoint(path, map_location=map_location, weights_only=weights_only)
            if saved_layout(checkpoint) != (1, 1):  # a sharded run's one-file save: its qkv rows are reordered
                raise CheckpointError(
                    f"{path} was saved as one file under tensor_parallel_size x pipeline_parallel_size = "
                    f"{saved_layout(checkpoint)}: it resumes only under that layout (sharded checkpoints, the "
                    "default, resume under any)"
                )
            return checkpoint
        checkpoint = read_whole(Path(path))
        own = {_plain(name): name for name in self.module.state_dict()}  # e.g. a compiled model's names
        checkpoint["state_dict"] = {own.get(name, name): value for name, value in checkpoint["state_dict"].items()}
        return checkpoint

    def remove_checkpoint(self, path) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()


class AnyLayoutResume(Callback):
    """Resuming a checkpoint under another layout than the one that saved it (one of the default callbacks).

    Saving: records the names of each optimizer's parameters (``OPTIMIZER_PARAMETERS``), which a ``.ckpt``
    file's optimizer state, keyed by position, does not say. Resuming in one process or under DDP: reads a
    sharded checkpoint directory whole and, once the optimizers exist, puts their state in Lightning's form.
    (``MeshStrategy`` resumes any layout itself.)
    """

    def __init__(self) -> None:
        self._resuming: dict[str, Any] | None = None

    @staticmethod
    def _sharded(trainer: L.Trainer) -> bool:
        from lightning.pytorch.strategies import ModelParallelStrategy

        return isinstance(trainer.strategy, ModelParallelStrategy)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        io = trainer.strategy.checkpoint_io
        if not self._sharded(trainer) and not isinstance(io, _ReadsShardedCheckpoints):
            trainer.strategy.checkpoint_io = _ReadsShardedCheckpoints(io, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._sharded(trainer):  # its optimizer state is keyed by name already (or, in one file, otherwise)
            return
        names = {id(p): name for name, p in pl_module.named_parameters()}
        checkpoint[OPTIMIZER_PARAMETERS] = [
            [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]
            for optimizer in trainer.optimizers
        ]

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for state in checkpoint.get("optimizer_states", []):  # litllm before 2026-12-03 kept LoRA's empty group
            if "param_groups" in state:
                state["param_groups"] = [group for group in state["param_groups"] if group["params"]]
        if checkpoint.get(WHOLE) and not self._sharded(trainer):
            self._resuming = checkpoint

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The optimizers exist now and Lightning restores their state next, from this same dict.
        checkpoint, self._resuming = self._resuming, None
        if checkpoint is None:
            return
        states = []
        for optimizer, named in zip(trainer.optimizers, checkpoint["optimizer_states"]):
            load_optimizer(pl_module, optimizer, named)
            states.append(optimizer.state_dict())
        checkpoint["optimizer_states"] = states
