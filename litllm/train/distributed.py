"""Sharding and activation checkpointing for the backbone.

FSDP2 (``torch.distributed.fsdp.fully_shard``) is applied per transformer block and then at the root,
inside ``configure_model``, when Lightning's ``ModelParallelStrategy`` provides a device mesh. Under
litllm's ``MeshStrategy`` the blocks are first split by tensor parallelism over the mesh's
``tensor_parallel`` dimension and FSDP2 shards over its ``data_parallel`` one (``fsdp_mesh``); under
Lightning's own ``ModelParallelStrategy`` every process is a data-parallel FSDP rank (``data_parallel_mesh``). The same code runs on CPU (gloo) and GPU (NCCL). Activation checkpointing uses the composable
``torch.distributed._composable.checkpoint``, which keeps parameter names, so full checkpoints still load.
"""

from __future__ import annotations

from typing import Any

import torch

from litllm.errors import ConfigError
from litllm.model.gpt import GPT


def recompute_block_activations(model: GPT) -> None:
    """Recompute each block's activations in the backward pass instead of storing them."""
    from torch.distributed._composable import checkpoint

    for block in model.blocks:
        checkpoint(block)


QLORA_REFUSED = (
    "model.method=qlora cannot be sharded or split (FSDP2, tensor or pipeline parallelism): bitsandbytes' "
    "4-bit weights lose their quantization state; use --trainer.strategy ddp, or model.method=lora"
)


def check_sharding_support(method: str | None, strategy: Any) -> None:
    """One ``ConfigError`` line when ``strategy`` would shard or split a QLoRA model (``ModelParallelStrategy``
    and litllm's ``MeshStrategy``, its subclass); DDP keeps a whole copy per process and trains it."""
    from lightning.pytorch.strategies import ModelParallelStrategy

    if method == "qlora" and isinstance(strategy, ModelParallelStrategy):
        raise ConfigError(QLORA_REFUSED)


def fsdp_mesh(model: torch.nn.Module, mesh, strategy):
    """Apply ``MeshStrategy``'s tensor parallelism to ``model``; return the mesh FSDP2 shards over."""
    from litllm.parallel.strategy import MeshStrategy
    from litllm.parallel.tensor import parallelize

    if any(type(m).__name__ == "Linear4bit" for m in model.modules()):  # scripts that skipped litllm's CLI
        raise ConfigError(QLORA_REFUSED)
    if not isinstance(strategy, MeshStrategy):
        return data_parallel_mesh(mesh)
    if mesh["tensor_parallel"].size() > 1:
        parallelize(model, mesh["tensor_parallel"], strategy.sequence_parallel)
    return mesh["data_parallel"]


def global_mean(trainer: Any, value: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``value`` (this process's mean over its part of the batch) as the mean over the whole global batch.

    Weighted by ``weight`` (e.g. this part's labelled tokens) when the parts differ in size, else the plain mean
    over the processes. Processes that share a batch (a tensor-parallel group, a pipeline's stages) hold the
    same value and weight, which count once more each in both sums: the ratio is unchanged. Collective: every
    process calls it at the same step (litllm logs on the steps of ``log_every_n_steps``, the same everywhere).
    """
    if trainer is None or trainer.world_size == 1:
        return value
    value = value.detach().float()
    if weight is None:
        return trainer.strategy.reduce(value, reduce_op="mean")
    weight = weight.detach().float().to(value.device)
    both = trainer.strategy.reduce(torch.stack([value * weight, weight]), reduce_op="sum")
    return both[0] / both[1].clamp(min=1)


def data_parallel_mesh(mesh):
    """The 1-D mesh of every process in ``mesh``, over which FSDP shards and averages gradients.

    Lightning's ``ModelParallelStrategy`` builds a 2-D ``(data_parallel, tensor_parallel)`` mesh whose
    defaults are ``data_parallel_size = num_nodes`` and ``tensor_parallel_size = devices per node``: on one
    node the ``data_parallel`` dimension has size 1. Sharding over that dimension alone would leave each
    process training its own unsharded copy on its own part of the batch (no gradient reduction at all).
    As litllm does not use the tensor-parallel dimension, all processes are data parallel: the data
    module's sampler (``trainer.global_rank`` of ``trainer.world_size``) and the token normalisation in
    ``LLMModule`` assume the same.
    """
    if mesh.ndim == 1:
        return mesh
    names = mesh.mesh_dim_names
    for name in names:  # one dimension spans every process (the other has size 1): use it as it is
        if mesh[name].size() == mesh.size():
            return mesh[name]
    from torch.distributed.device_mesh import init_device_mesh

    # Several nodes with the default sizes (both dimensions > 1): a new 1-D mesh over the whole world.
    return init_device_mesh(mesh.device_type, (mesh.size(),), mesh_dim_names=("data_parallel",))


def shard(model: torch.nn.Module, mesh, param_dtype: torch.dtype | None = None, cpu_offload: bool = False) -> None:
    """``fully_shard`` every transformer block, then the root (embeddings, final norm, head).

    With ``param_dtype`` (bf16 on GPU) the gathered parameters are cast for compute while the
    gradients are reduced in fp32. ``cpu_offload`` keeps the shards (and so the optimizer state) on the CPU.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs = {"mesh": mesh}
    if param_dtype is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    if cpu_offload:  # shards, gradients and optimizer state live in CPU memory; compute stays on the device
        kwargs["offload_policy"] = CPUOffloadPolicy()
    blocks = model.get_base_model().blocks if hasattr(model, "get_base_model") else model.blocks
    if isinstance(blocks, torch.nn.ModuleDict):  # a pipeline stage's blocks, by their index in the whole model
        blocks = blocks.values()
    for block in blocks:
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)


def check_data_split(dataloader, world_size: int) -> str | None:
    """Why ``dataloader`` would give several processes the same samples, or None if it splits them.

    Lightning's ``ModelParallelStrategy`` (on its defaults) tells Lightning that there is one
    data-parallel rank per node, so a loader that Lightning equips with a sampler itself would feed
    every process of a node the same batches; litllm's data module builds its own sampler over all
    processes. A loader over an ``IterableDataset`` must split itself and is not checked. ``world_size``
    counts data-parallel replicas (the processes of a tensor-parallel group read the same batches).
    """
    from torch.utils.data import DataLoader, IterableDataset

    if world_size <= 1 or not isinstance(dataloader, DataLoader) or isinstance(dataloader.dataset, IterableDataset):
        return None
    replicas = getattr(dataloader.sampler, "num_replicas", None)
    if replicas is None and dataloader.batch_sampler is not None:
        replicas = getattr(getattr(dataloader.batch_sampler, "sampler", None), "num_replicas", None)
    if replicas == world_size:
        return None
    return (
        f"the training loader's sampler splits the data over {replicas or 1} process(es), but {world_size} train: "
        "they would see the same samples. Use litllm's LLMDataModule, or give the DataLoader a "
        f"DistributedSampler(num_replicas={world_size}, rank=trainer.global_rank)"
    )


def check_training_loaders(trainer) -> None:
    """One ``ConfigError`` when a training loader would feed several data-parallel replicas the same samples."""
    from litllm.data.sampler import data_parallel_split

    loaders = trainer.train_dataloader
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
        problem = check_data_split(loader, data_parallel_split(trainer)[1])
        if problem is not None:
            raise ConfigError(problem)


def full_state_dict(model: torch.nn.Module, pipeline: Any = None) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU, gathering FSDP2 and tensor-parallel shards (DTensors).

    Under tensor parallelism the fused qkv rows are put back in the model's own order (``canonical_qkv``).
    With a ``pipeline`` (``litllm.parallel.pipeline.Pipeline``; ``model`` is then its stage), every stage's
    weights are gathered on global rank 0, under the whole model's names; the other ranks get an empty dict.
    """
    if pipeline is not None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        from litllm.parallel.pipeline import gather_full_state
        from litllm.parallel.tensor import canonical_qkv

        # Not cpu_offload: with it only global rank 0 would receive the gathered tensors, and the other
        # stages' first replicas must send theirs.
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
        state = canonical_qkv(model, {k: v.detach().cpu() for k, v in state.items()})
        return gather_full_state(state, pipeline)
    if any(hasattr(p, "full_tensor") for p in model.parameters()):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        from litllm.parallel.tensor import canonical_qkv

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return canonical_qkv(model, state)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
