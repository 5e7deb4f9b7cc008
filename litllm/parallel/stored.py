"""The items of a sharded checkpoint directory, big tensors left on disk until a process needs them.

Resuming under another layout reads a checkpoint whole, tensor by tensor (``litllm.parallel.reshard``):
each process needs every tensor it holds a part of, whole (a tensor-parallel split of another size, or
rows in another order, is no cut PyTorch's resharding knows). Read at once, that is one full copy of the
model and its optimizer state in every process: 96 GB per process for an 8B model with AdamW, 8 processes
per node. ``StoredTensor`` reads one tensor when it is needed, so a process holds its own parts plus one
whole tensor at a time, and a pipeline stage never reads the other stages' tensors.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from litllm.errors import CheckpointError
from litllm.parallel.safe_load import SafeFileSystemReader, SafeLoadPlanner

READ_AT_ONCE_NUMEL = 1 << 16
"""Tensors up to this many elements (norms, biases, optimizer steps) are read with the checkpoint's settings
in one pass; bigger ones when needed (one read each)."""


class StoredTensor:
    """A tensor of a checkpoint directory, not read yet: ``read()`` reads it whole, its rows taken in the
    order ``take_rows`` composed (a tensor-parallel checkpoint's qkv rows put in another order)."""

    def __init__(self, path: Path, key: str, size: torch.Size, dtype: torch.dtype) -> None:
        self.path, self.key, self.shape, self.dtype = path, key, torch.Size(size), dtype
        self.rows: torch.Tensor | None = None

    def dim(self) -> int:
        return len(self.shape)

    def size(self, dim: int) -> int:
        return self.shape[dim]

    def take_rows(self, order: torch.Tensor) -> StoredTensor:
        """This tensor's rows in ``order`` (not read: the order is kept for ``read``)."""
        taken = StoredTensor(self.path, self.key, self.shape, self.dtype)
        taken.rows = order if self.rows is None else self.rows[order]
        return taken

    def read(self) -> torch.Tensor:
        tensor = torch.empty(self.shape, dtype=self.dtype)
        _load(self.path, {self.key: tensor})
        return tensor if self.rows is None else tensor[self.rows]


def take_rows(value: Any, order: torch.Tensor) -> Any:
    """``value[order]`` for a tensor, read or not."""
    return value.take_rows(order) if isinstance(value, StoredTensor) else value[order]


def read_value(value: Any) -> Any:
    """``value`` itself, or the tensor it stands for (read now)."""
    return value.read() if isinstance(value, StoredTensor) else value


def read_items(path: Path, lazy: bool) -> dict[str, Any]:
    """Every item of the checkpoint directory ``path`` by its flattened key; with ``lazy``, the tensors over
    ``READ_AT_ONCE_NUMEL`` elements as ``StoredTensor`` (read when needed)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    items = SafeFileSystemReader(str(path)).read_metadata().state_dict_metadata
    now: dict[str, Any] = {}
    later: dict[str, StoredTensor] = {}
    for key, item in items.items():
        if not isinstance(item, TensorStorageMetadata):
            now[key] = None  # a setting (learning rate, betas): read into place
        elif lazy and item.size.numel() > READ_AT_ONCE_NUMEL:
            later[key] = StoredTensor(path, key, item.size, item.properties.dtype)
        else:
            now[key] = torch.empty(item.size, dtype=item.properties.dtype)
    _load(path, now)
    return {**now, **later}


def _load(path: Path, state: dict[str, Any]) -> None:
    """Read ``state``'s keys from the checkpoint directory into it, in this process alone."""
    from torch.distributed.checkpoint import load
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            load(state, storage_reader=SafeFileSystemReader(str(path)), planner=SafeLoadPlanner(), no_dist=True)
    except CheckpointException as err:  # PyTorch gathers each process's error: ours says what went wrong
        raise next((e for e, _ in err.failures.values() if isinstance(e, CheckpointError)), err) from None
