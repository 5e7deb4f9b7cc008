"""``MeshStrategy``: FSDP2 over data-parallel groups times tensor parallelism within them, on one 2-D mesh.

The processes form a ``(data_parallel, tensor_parallel)`` grid (Lightning's ``ModelParallelStrategy``
mesh). Global rank ``g`` sits at row ``g // tensor_parallel_size`` (its data-parallel rank) and column
``g % tensor_parallel_size``: the processes of one row (a tensor-parallel group, consecutive ranks,
so on one node when the group fits on a node) share every block's weights and see the same batches;
the rows are data-parallel replicas, each sharding its copy with FSDP2 and reading its own part of
the data. ``LLMModule.configure_model`` applies the tensor-parallel plan (``litllm.parallel.tensor``)
on the ``tensor_parallel`` dimension, then FSDP2 on the ``data_parallel`` one.

Unlike Lightning's defaults (one data-parallel rank per node), ``auto`` here means: every process
not used by tensor parallelism is data parallel. ``MeshStrategy()`` alone is plain FSDP2 over all processes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy

from litllm.errors import CheckpointError, ConfigError


def check_sizes(data_parallel_size: int | str, tensor_parallel_size: int | str) -> None:
    for name, size in (("data_parallel_size", data_parallel_size), ("tensor_parallel_size", tensor_parallel_size)):
        if size != "auto" and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConfigError(f"{name} must be a positive integer or 'auto', got {size!r}")


def mesh_shape(world_size: int, data_parallel_size: int | str, tensor_parallel_size: int | str) -> tuple[int, int]:
    """The ``(data_parallel, tensor_parallel)`` sizes for ``world_size`` processes, or one ``ConfigError`` line."""
    check_sizes(data_parallel_size, tensor_parallel_size)
    dp, tp = data_parallel_size, tensor_parallel_size
    if tp == "auto":
        tp = 1 if dp == "auto" else world_size // dp if world_size % dp == 0 else 0
    if dp == "auto":
        dp = world_size // tp if tp and world_size % tp == 0 else 0
    if dp * tp != world_size:
        raise ConfigError(
            f"the mesh data_parallel_size={data_parallel_size} x tensor_parallel_size={tensor_parallel_size} "
            f"does not fit the run's {world_size} process(es) (trainer.devices x trainer.num_nodes): "
            "their product must equal it ('auto' takes the quotient)"
        )
    return dp, tp


class MeshStrategy(ModelParallelStrategy):
    """Data parallelism (FSDP2) times tensor parallelism on a ``(data_parallel, tensor_parallel)`` device mesh.

    Args:
        data_parallel_size: Number of data-parallel replicas, each reading its own batches; FSDP2 shards
            the weights across them. ``auto``: the processes divided by ``tensor_parallel_size``.
        tensor_parallel_size: Processes that split each block's heads and MLP width (keep them within a
            node: they talk at every layer). ``auto``: the processes divided by ``data_parallel_size``,
            or 1 when both are ``auto``.
        save_distributed_checkpoint: Save sharded checkpoints (one file per process) rather than one full file.
        process_group_backend: ``nccl`` on GPU, ``gloo`` on CPU by default.
        timeout: Timeout of collective operations.
    """

    def __init__(
        self,
        data_parallel_size: int | Literal["auto"] = "auto",
        tensor_parallel_size: int | Literal["auto"] = "auto",
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        check_sizes(data_parallel_size, tensor_parallel_size)
        super().__init__(
            data_parallel_size=data_parallel_size,
            tensor_parallel_size=tensor_parallel_size,
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
            timeout=timeout,
        )
        self._requested = (data_parallel_size, tensor_parallel_size)

    def _configure_launcher(self) -> None:
        # Lightning calls this once it knows the devices and nodes, in the launching process and before
        # any child starts: the place to refuse a mesh that does not fit, with one line.
        self._data_parallel_size, self._tensor_parallel_size = mesh_shape(self.world_size, *self._requested)
        super()._configure_launcher()

    def setup_environment(self) -> None:
        self._data_parallel_size, self._tensor_parallel_size = mesh_shape(self.world_size, *self._requested)
        super().setup_environment()

    @property
    def tensor_parallel_size(self) -> int:
        """Processes per tensor-parallel group (known once the trainer has placed the strategy)."""
        return mesh_shape(self.world_size, *self._requested)[1]

    @property
    def data_parallel_size(self) -> int:
        """Data-parallel replicas: the number of distinct batches per step."""
        return mesh_shape(self.world_size, *self._requested)[0]

    @property
    def data_parallel_rank(self) -> int:
        """Which data-parallel replica this process belongs to (the processes of a group share it)."""
        return self.global_rank // self.tensor_parallel_size

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        return {"num_replicas": self.data_parallel_size, "rank": self.data_parallel_rank}

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath, storage_options: Any = None) -> None:
        # Tensor parallelism keeps each qkv weight's rows in an order made for its group size
        # (litllm.parallel.tensor): a checkpoint records the size, and resumes only under the same one.
        checkpoint["tensor_parallel_size"] = self.tensor_parallel_size
        super().save_checkpoint(checkpoint, filepath, storage_options)

    def load_checkpoint(self, checkpoint_path, weights_only: bool | None = None) -> dict[str, Any]:
        checkpoint = super().load_checkpoint(checkpoint_path, weights_only)
        saved = checkpoint.get("tensor_parallel_size", 1)
        if saved != self.tensor_parallel_size:
            raise CheckpointError(
                f"{checkpoint_path} was saved with tensor_parallel_size={saved} and resumes only with that size "
                f"(this run: {self.tensor_parallel_size}); its final model directory loads anywhere"
            )
        return checkpoint
