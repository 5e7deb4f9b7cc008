"""``MeshStrategy``: FSDP2 over data-parallel groups times tensor and pipeline parallelism, on one device mesh.

The processes form a ``(data_parallel, tensor_parallel)`` grid (Lightning's ``ModelParallelStrategy``
mesh). Global rank ``g`` sits at row ``g // tensor_parallel_size`` (its data-parallel rank) and column
``g % tensor_parallel_size``: the processes of one row (a tensor-parallel group, consecutive ranks,
so on one node when the group fits on a node) share every block's weights and see the same batches;
the rows are data-parallel replicas, each sharding its copy with FSDP2 and reading its own part of
the data. ``LLMModule.configure_model`` applies the tensor-parallel plan (``litllm.parallel.tensor``)
on the ``tensor_parallel`` dimension, then FSDP2 on the ``data_parallel`` one.

With ``pipeline_parallel_size`` P > 1 the mesh is ``(pipeline_parallel, data_parallel, tensor_parallel)``:
rank ``g`` holds stage ``g // (world / P)`` of the model (``litllm.parallel.pipeline``); within a stage
the grid above applies (its blocks split over each tensor-parallel group, then sharded with FSDP2 over
the data-parallel replicas), and the P processes with the same data-parallel and tensor-parallel
coordinates form one pipeline. The processes of one tensor-parallel group of every stage read one batch.

Unlike Lightning's defaults (one data-parallel rank per node), ``auto`` here means: every process
not used by tensor or pipeline parallelism is data parallel. ``MeshStrategy()`` alone is plain FSDP2
over all processes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy

from litllm.errors import ConfigError
from litllm.parallel.reshard import (
    OPTIMIZER_PARAMETERS,
    WHOLE,
    load_whole,
    read_whole,
    saved_layout,
)
from litllm.parallel.safe_load import SafeFileSystemReader, SafeLoadPlanner

PIPELINE_SCHEDULES = ("gpipe", "1f1b")


def check_sizes(
    data_parallel_size: int | str, tensor_parallel_size: int | str, pipeline_parallel_size: int = 1
) -> None:
    sizes = (("data_parallel_size", data_parallel_size), ("tensor_parallel_size", tensor_parallel_size))
    for name, size in sizes:
        if size != "auto" and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConfigError(f"{name} must be a positive integer or 'auto', got {size!r}")
    size = pipeline_parallel_size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"pipeline_parallel_size must be a positive integer, got {size!r}")


def mesh_shape(
    world_size: int,
    data_parallel_size: int | str,
    tensor_parallel_size: int | str,
    pipeline_parallel_size: int = 1,
) -> tuple[int, int]:
    """The ``(data_parallel, tensor_parallel)`` sizes for ``world_size`` processes of which ``pipeline_parallel_size``
    hold the stages of one model, or one ``ConfigError`` line when the sizes do not multiply to ``world_size``."""
    check_sizes(data_parallel_size, tensor_parallel_size, pipeline_parallel_size)
    pp = pipeline_parallel_size
    dp, tp = data_parallel_size, tensor_parallel_size
    per_stage = world_size // pp if world_size % pp == 0 else 0  # the processes of one pipeline stage
    if tp == "auto":
        tp = 1 if dp == "auto" else per_stage // dp if per_stage % dp == 0 else 0
    if dp == "auto":
        dp = per_stage // tp if tp and per_stage % tp == 0 else 0
    if dp * tp * pp != world_size:
        pipeline = f" x pipeline_parallel_size={pp}" if pp > 1 else ""
        raise ConfigError(
            f"the mesh data_parallel_size={data_parallel_size} x tensor_parallel_size={tensor_parallel_size}"
            f"{pipeline} does not fit the run's {world_size} process(es) (trainer.devices x trainer.num_nodes): "
            "their product must equal it ('auto' takes the quotient)"
        )
    return dp, tp


class MeshStrategy(ModelParallelStrategy):
    """Data parallelism (FSDP2) times tensor parallelism times pipeline parallelism, on one device mesh.

    Args:
        data_parallel_size: Number of data-parallel replicas, each reading its own batches; FSDP2 shards
            the weights across them. ``auto``: the processes divided by the tensor- or pipeline-parallel size.
        tensor_parallel_size: Processes that split each block's heads and MLP width (keep them within a
            node: they talk at every layer). ``auto``: the processes divided by ``data_parallel_size``,
            or 1 when both are ``auto``.
        pipeline_parallel_size: Processes that each hold a consecutive part (a stage) of the model's blocks,
            the first with the embeddings, the last with the final norm, head and loss
            (``litllm.parallel.pipeline``). 1: no pipeline. With tensor parallelism, each stage's blocks are
            split over its tensor-parallel group (3-D: data x tensor x pipeline).
        pipeline_schedule: ``gpipe`` (every micro-batch forward, then every one backward) or ``1f1b``
            (one forward, one backward in the steady state: at most P micro-batches of activations kept).
        pipeline_microbatches: Micro-batches each batch is cut into for the pipeline (they must divide the
            batch); None: ``pipeline_parallel_size``. More micro-batches fill the pipeline better
            (idle fraction (P - 1) / (microbatches + P - 1)); ``1f1b`` needs at least P.
        pipeline_cut_points: The block at which each stage after the first starts (P - 1 increasing
            indices), e.g. ``[6]`` for 12 blocks on 2 stages. None: balanced by parameter count (the
            embeddings count towards the first stage, the head towards the last).
        sequence_parallel: Also split the residual stream, the norms and the residual dropout of each
            tensor-parallel group along the sequence (activation memory between the layers divided by the
            group size; the same collectives' volume: reduce-scatter and all-gather instead of all-reduce).
            Under a pipeline too (each stage sends its part of the sequence on) and with LoRA (an adapted head
            refuses it in one line).
        save_distributed_checkpoint: Save sharded checkpoints (one file per process) rather than one full
            file (pipeline parallelism saves sharded checkpoints only).
        process_group_backend: ``nccl`` on GPU, ``gloo`` on CPU by default.
        timeout: Timeout of collective operations.
    """

    def __init__(
        self,
        data_parallel_size: int | Literal["auto"] = "auto",
        tensor_parallel_size: int | Literal["auto"] = "auto",
        pipeline_parallel_size: int = 1,
        pipeline_schedule: Literal["gpipe", "1f1b"] = "1f1b",
        pipeline_microbatches: int | None = None,
        pipeline_cut_points: list[int] | None = None,
        sequence_parallel: bool = False,
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        check_sizes(data_parallel_size, tensor_parallel_size, pipeline_parallel_size)
        if pipeline_schedule not in PIPELINE_SCHEDULES:
            choices = ", ".join(PIPELINE_SCHEDULES)
            raise ConfigError(f"pipeline_schedule must be one of {choices}, got {pipeline_schedule!r}")
        microbatches = pipeline_parallel_size if pipeline_microbatches is None else pipeline_microbatches
        if not isinstance(microbatches, int) or isinstance(microbatches, bool) or microbatches < 1:
            raise ConfigError(f"pipeline_microbatches must be a positive integer, got {pipeline_microbatches!r}")
        if pipeline_schedule == "1f1b" and microbatches < pipeline_parallel_size:
            raise ConfigError(
                f"pipeline_schedule=1f1b needs at least as many micro-batches as stages: "
                f"pipeline_microbatches={microbatches} < pipeline_parallel_size={pipeline_parallel_size}"
            )
        if pipeline_parallel_size > 1 and not save_distributed_checkpoint:
            raise ConfigError(
                "pipeline parallelism saves sharded checkpoints only (each stage writes its own weights): "
                "leave save_distributed_checkpoint=True; the final model directory is one file"
            )
        if pipeline_cut_points is not None and len(pipeline_cut_points) != pipeline_parallel_size - 1:
            raise ConfigError(
                f"pipeline_cut_points={pipeline_cut_points} must give {pipeline_parallel_size - 1} block index(es): "
                "where each stage after the first starts"
            )
        super().__init__(
            data_parallel_size=data_parallel_size,
            tensor_parallel_size=tensor_parallel_size,
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
            timeout=timeout,
        )
        self._requested = (data_parallel_size, tensor_parallel_size)
        self._pipeline_parallel_size = pipeline_parallel_size
        self.pipeline_schedule = pipeline_schedule
        self.pipeline_microbatches = microbatches
        self.pipeline_cut_points = list(pipeline_cut_points) if pipeline_cut_points is not None else None
        self.sequence_parallel = sequence_parallel

    def _shape(self) -> tuple[int, int]:
        return mesh_shape(self.world_size, *self._requested, self._pipeline_parallel_size)

    def _configure_launcher(self) -> None:
        # Lightning calls this once it knows the devices and nodes, in the launching process and before
        # any child starts: the place to refuse a mesh that does not fit, with one line.
        self._data_parallel_size, self._tensor_parallel_size = self._shape()
        super()._configure_launcher()

    def setup_environment(self) -> None:
        self._data_parallel_size, self._tensor_parallel_size = self._shape()
        if self._pipeline_parallel_size == 1:
            super().setup_environment()
            return
        # ModelParallelStrategy.setup_environment builds a 2-D mesh whose sizes must multiply to the world
        # size; a pipeline needs a third dimension, outermost so that a stage's replicas are consecutive ranks.
        from lightning.pytorch.strategies import ParallelStrategy
        from torch.distributed.device_mesh import init_device_mesh

        ParallelStrategy.setup_environment(self)
        self._setup_distributed()
        self._device_mesh = init_device_mesh(
            self.root_device.type,
            (self._pipeline_parallel_size, self._data_parallel_size, self._tensor_parallel_size),
            mesh_dim_names=("pipeline_parallel", "data_parallel", "tensor_parallel"),
        )
        self.lightning_module._device_mesh = self._device_mesh

    @property
    def tensor_parallel_size(self) -> int:
        """Processes per tensor-parallel group (known once the trainer has placed the strategy)."""
        return self._shape()[1]

    @property
    def data_parallel_size(self) -> int:
        """Data-parallel replicas: the number of distinct batches per step."""
        return self._shape()[0]

    @property
    def pipeline_parallel_size(self) -> int:
        """Pipeline stages: the processes that together hold one copy of the model (1: no pipeline)."""
        return self._pipeline_parallel_size

    @property
    def data_parallel_rank(self) -> int:
        """Which data-parallel replica this process belongs to (the processes of a group or pipeline share it)."""
        return (self.global_rank // self.tensor_parallel_size) % self.data_parallel_size

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        return {"num_replicas": self.data_parallel_size, "rank": self.data_parallel_rank}

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath, storage_options: Any = None) -> None:
        # Tensor parallelism keeps each qkv weight's rows in an order made for its group size
        # (litllm.parallel.tensor): a checkpoint records the sizes, to be resumed under others (reshard).
        checkpoint["tensor_parallel_size"] = self.tensor_parallel_size
        checkpoint["pipeline_parallel_size"] = self.pipeline_parallel_size
        super().save_checkpoint(checkpoint, filepath, storage_options)

    def optimizer_state(self, optimizer) -> dict[str, Any]:
        if self.pipeline_parallel_size == 1:
            return super().optimizer_state(optimizer)
        # Each stage's optimizer holds other parameters: its param_groups (one object per process in the
        # nested form) would collide in the distributed checkpoint; the flat form keys every entry by its
        # parameter's name.
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        optimizer = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer wraps the torch one
        return get_optimizer_state_dict(self.model, optimizer, options=_flat_options(cpu_offload=True))

    def load_checkpoint(self, checkpoint_path, weights_only: bool | None = None) -> dict[str, Any]:
        import torch
        from lightning.fabric.utilities.load import _METADATA_FILENAME

        path = Path(self.broadcast(checkpoint_path))
        own = (self.tensor_parallel_size, self.pipeline_parallel_size)
        if (path / _METADATA_FILENAME).is_file():  # sharded: saved under this run's layout, or not?
            # meta.pt holds plain data (step, settings): never unpickle code from it, whatever the caller asks
            metadata = torch.load(path / _METADATA_FILENAME, weights_only=True)
            return self._load_own_layout(path) if saved_layout(metadata) == own else self._load_other_layout(path)
        metadata = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if OPTIMIZER_PARAMETERS not in metadata and saved_layout(metadata) == own:  # this layout's one-file save
            return super().load_checkpoint(checkpoint_path, weights_only=True)
        return self._load_other_layout(path)  # one process's or DDP's file, or another layout's

    def _load_own_layout(self, path: Path) -> dict[str, Any]:
        """Each process reads its own shards (resharded by PyTorch where only the data-parallel size changed)."""
        import torch
        from lightning.fabric.utilities.load import _METADATA_FILENAME
        from torch.distributed.checkpoint import load
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
            set_optimizer_state_dict,
        )

        module = self.model
        state = {"state_dict": get_model_state_dict(module)}
        load(state, storage_reader=SafeFileSystemReader(str(path)), planner=SafeLoadPlanner())
        module.load_state_dict(state["state_dict"], strict=self.lightning_module.strict_loading)
        # The optimizer state in the form it was saved in (optimizer_state): flat under a pipeline.
        options = _flat_options() if self.pipeline_parallel_size > 1 else StateDictOptions()
        for index, optimizer in enumerate(self.optimizers):
            key = f"optimizer_{index}"
            optim_state = {key: get_optimizer_state_dict(module, optimizer, options=options)}
            load(optim_state, storage_reader=SafeFileSystemReader(str(path)), planner=SafeLoadPlanner())
            set_optimizer_state_dict(module, optimizer, optim_state_dict=optim_state[key], options=options)
        return torch.load(path / _METADATA_FILENAME, weights_only=True)

    def _load_other_layout(self, path: Path) -> dict[str, Any]:
        """A checkpoint of another layout (or a one-process ``.ckpt`` file): each tensor this process holds a part
        of read whole when needed, then split as this run is."""
        checkpoint = read_whole(path, lazy=True)
        load_whole(self.model, self.optimizers, checkpoint, self.tensor_parallel_size)
        for key in ("state_dict", "optimizer_states", WHOLE):
            checkpoint.pop(key, None)
        return checkpoint


def _flat_options(cpu_offload: bool = False):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(cpu_offload=cpu_offload, flatten_optimizer_state_dict=True)
