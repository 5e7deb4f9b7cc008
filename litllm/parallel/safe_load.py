"""Reading a sharded checkpoint directory without running code from it.

PyTorch's distributed checkpoint reader unpickles the directory's ``.metadata`` index unrestricted, and its
load planner unpickles non-tensor items (optimizer settings) with ``weights_only=False``: a crafted
directory could run code on load. ``SafeFileSystemReader`` reads the index with the classes such an index
holds and nothing else; ``SafeLoadPlanner`` reads the items with ``weights_only=True``. Anything else is
refused in one line, naming it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader

from litllm.errors import CheckpointError


def is_sharded_checkpoint(path: Path) -> bool:
    """A distributed checkpoint: the directory FSDP2, tensor or pipeline parallel runs save (one ``.distcp``
    file per process, PyTorch's ``.metadata`` and Lightning's ``meta.pt`` with the step and settings)."""
    return path.is_dir() and (path / ".metadata").is_file() and (path / SHARDED_META).is_file()


SHARDED_META = "meta.pt"
"""The file of a sharded checkpoint directory that holds everything but the tensors (Lightning's name)."""


class _IndexUnpickler(pickle.Unpickler):
    """Unpickles a checkpoint directory's ``.metadata`` index with the classes such an index holds, nothing else."""

    def find_class(self, module: str, name: str):
        found = super().find_class(module, name) if module in _INDEX_MODULES else None
        if module == "torch" and not (found is torch.Size or isinstance(found, torch.dtype)):
            found = None
        elif module == "torch.distributed.checkpoint.metadata" and getattr(found, "__module__", None) != module:
            found = None  # the index's own classes, not what that module imports
        elif module in _INDEX_NAMES and name not in _INDEX_NAMES[module]:
            found = None
        if found is None:
            raise CheckpointError(f"the checkpoint's .metadata names {module}.{name}: loading it could run code")
        return found


_INDEX_MODULES = {"torch", "torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem"}
_INDEX_MODULES |= {"torch.serialization", "pathlib", "collections"}
_INDEX_NAMES = {
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.serialization": {"_get_layout"},  # a layout by its name
    "pathlib": {"PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"},
    "collections": {"OrderedDict"},
}


class SafeFileSystemReader(FileSystemReader):
    """PyTorch's reader of a checkpoint directory, its ``.metadata`` index read with ``_IndexUnpickler``
    (PyTorch's own reader unpickles it unrestricted)."""

    def read_metadata(self, *args: Any, **kwargs: Any):
        from torch.distributed.checkpoint.metadata import StorageMeta

        with self.fs.create_stream(self._get_metadata_path(kwargs.get("rank")), "rb") as f:
            metadata = _IndexUnpickler(f).load()
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """PyTorch's load planner, reading the checkpoint's non-tensor items (optimizer settings) without running
    code: its own planner unpickles them with ``weights_only=False``."""

    def load_bytes(self, read_item, value) -> None:
        try:
            item = torch.load(value, weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"checkpoint item {read_item.dest_index.fqn!r} would run code when loaded, which litllm never does"
            ) from None
        if self.flatten_state_dict:
            from torch.distributed.checkpoint._traverse import set_element  # (as PyTorch's planner does)

            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], item)
        else:
            self.state_dict[read_item.dest_index.fqn] = item
