"""The items of a sharded checkpoint directory, big tensors left on disk until a process needs them.

Resuming under another layout reads a checkpoint whole, tensor by tensor (``litllm.parallel.reshard``):
each process needs every tensor it holds a part of, whole (a tensor-parallel split of another size, or
rows in another order, is no cut PyTorch's resharding knows). Read at once, that is one full copy of the
model and its optimizer state in every process: 96 GB per process for an 8B model with AdamW, 8 processes
per node. ``StoredTensor`` reads one tensor when it is needed, so a process holds its own parts plus one
whole tensor at a time, and a pipeline stage never reads the other stages' big tensors.
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
    """A tensor not read yet, from a checkpoint directory (``reader`` and ``key``) or memory-mapped (``held``):
    ``read()`` gives it whole, its rows taken in the order ``take_rows`` composed (a tensor-parallel
    checkpoint's qkv rows put in another order)."""

    def __init__(self, reader: _Reader | None, key: str, shape: torch.Size, dtype: torch.dtype) -> None:
        self.reader, self.key, self.shape, self.dtype = reader, key, torch.Size(shape), dtype
        self.held: torch.Tensor | None = None
        self.rows: torch.Tensor | None = None

    @classmethod
    def of(cls, tensor: torch.Tensor) -> StoredTensor:
        """A tensor already at hand (a memory-mapped file's) whose row order is to be composed, not applied."""
        stored = cls(None, "", tensor.shape, tensor.dtype)
        stored.held = tensor
        return stored

    def dim(self) -> int:
        return len(self.shape)

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.shape if dim is None else self.shape[dim]

    def take_rows(self, order: torch.Tensor) -> StoredTensor:
        """This tensor's rows in ``order`` (nothing read: the order is kept for ``read``)."""
        taken = StoredTensor(self.reader, self.key, self.shape, self.dtype)
        taken.held, taken.rows = self.held, order if self.rows is None else self.rows[order]
        return taken

    def read(self) -> torch.Tensor:
        tensor = self.held
        if tensor is None:
            tensor = torch.empty(self.shape, dtype=self.dtype)
            _load(self.reader, {self.key: tensor})
        return tensor if self.rows is None else tensor[self.rows]


def take_rows(value: Any, order: torch.Tensor, defer: bool = False) -> Any:
    """``value[order]`` for a tensor, read or not; with ``defer``, a tensor at hand's rows are taken when read."""
    if isinstance(value, StoredTensor):
        return value.take_rows(order)
    return StoredTensor.of(value).take_rows(order) if defer else value[order]


def read_value(value: Any) -> Any:
    """``value`` itself, or the tensor it stands for (read now)."""
    return value.read() if isinstance(value, StoredTensor) else value


def read_items(path: Path, lazy: bool) -> dict[str, Any]:
    """Every item of the checkpoint directory ``path`` by its flattened key; with ``lazy``, the tensors over
    ``READ_AT_ONCE_NUMEL`` elements as ``StoredTensor`` (read when needed)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    reader = _Reader(str(path))
    items = reader.read_metadata().state_dict_metadata
    now: dict[str, Any] = {}
    later: dict[str, StoredTensor] = {}
    for key, item in items.items():
        if not isinstance(item, TensorStorageMetadata):
            now[key] = None  # a setting (learning rate, betas): read into place
        elif lazy and item.size.numel() > READ_AT_ONCE_NUMEL:
            later[key] = StoredTensor(reader, key, item.size, item.properties.dtype)
        else:
            now[key] = torch.empty(item.size, dtype=item.properties.dtype)
    _load(reader, now)
    return {**now, **later}


class _Reader(SafeFileSystemReader):
    """A checkpoint directory's reader for one resume, its index unpickled once (every tensor read asks for it)."""

    _metadata: Any = None

    def read_metadata(self, *args: Any, **kwargs: Any):
        if self._metadata is None:
            self._metadata = super().read_metadata(*args, **kwargs)
        self._metadata.storage_meta.load_id = self.load_id
        return self._metadata


def _load(reader: _Reader, state: dict[str, Any]) -> None:
    """Read ``state``'s keys from the checkpoint directory into it, in this process alone."""
    from torch.distributed.checkpoint import load
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            load(state, storage_reader=reader, planner=SafeLoadPlanner(), no_dist=True)
    except CheckpointException as err:  # PyTorch gathers each process's error: ours says what went wrong
        raise next((e for e, _ in err.failures.values() if isinstance(e, CheckpointError)), err) from None
