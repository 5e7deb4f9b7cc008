"""Tensor parallelism for the backbone: each block's attention heads and MLP width split over processes.

Megatron-style, with ``torch.distributed.tensor.parallel.parallelize_module`` on the mesh's
``tensor_parallel`` dimension, per block:

    attn.qkv            ColwiseParallel   (each process computes the q, k and v of its own heads)
    attn.proj           RowwiseParallel   (partial sums of the heads, all-reduced)
    mlp.gate, mlp.up    ColwiseParallel   (each process holds a slice of the hidden width)
    mlp.down            RowwiseParallel

Under pipeline parallelism the same plan applies to each stage's blocks (3-D: data x tensor x pipeline).

LoRA (peft) wraps a targeted layer as ``base_layer`` plus the adapter's ``lora_A`` (in -> r) and ``lora_B``
(r -> out). The frozen base layer takes the layer's split; in a column-wise layer ``lora_A`` is
replicated and ``lora_B`` split by output rows like the base (each process adds its own rows of
``B A x``), in a row-wise layer ``lora_A`` is split by input columns (its partial sums all-reduced) and
``lora_B`` replicated. Each process's output is then the base's plus the adapter's part, as without
tensor parallelism. QLoRA's 4-bit base cannot be split (bitsandbytes' packed weights are not DTensors).
The vocabulary is split too: the embedding table by rows, the head by output, so that each process
holds the logits of its slice of the vocabulary only and the loss is computed on the slices
(``litllm.parallel.vocab``); an adapted (LoRA) head and its tied embedding stay whole. The residual
stream, the norms and learned positions stay replicated: every process of a group computes them in full
on the same batch, unless ``sequence_parallel``: then between the layers each process holds its part of
the sequence (norms and residual dropout run on it; column-wise layers all-gather the sequence, row-wise
ones reduce-scatter into it; ``split_sequence`` cuts the embeddings' output before the first block).
Attention reads its head counts from the width of its qkv output (``litllm.model.gpt.Attention``), so
the same code runs on n_head / tp heads.

The fused qkv projection stores the rows of all query heads, then all key heads, then all value
heads. A contiguous split of those rows would give process 0 queries only; so before sharding, the
rows are reordered so that process r's contiguous slice holds the q, k and v rows of its own heads
(``qkv_rows``). The reordering is undone wherever full weights leave the run (``canonical_qkv``,
used by the final model directory), so ``final/`` is the same whatever the mesh. Lightning's own
checkpoints hold the reordered rows; ``MeshStrategy`` records the size in every checkpoint, and a resume
under another size puts the rows back (``litllm.parallel.reshard``).
"""

from __future__ import annotations

import torch

from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.parallel.pipeline import PipelineStageModule

SEQUENCE_PARALLEL = "sequence_parallel"
"""Set (True) on a model whose residual stream ``parallelize`` split along the sequence."""
ROWS_ATTRIBUTE = "tensor_parallel_rows"
"""Set on a reordered qkv ``nn.Linear``: the order of its rows (``qkv_rows``), to undo on export."""


def check_divisible(config: ModelConfig, tp: int) -> None:
    """One line when the model's heads or MLP width cannot be split evenly over ``tp`` processes."""
    for name in ("n_head", "n_kv_head", "intermediate_size"):
        value = getattr(config, name)
        if value % tp:
            raise ConfigError(
                f"tensor_parallel_size={tp} does not divide {name}={value}: "
                f"choose a tensor-parallel size that divides n_head, n_kv_head and intermediate_size"
            )


def qkv_rows(config: ModelConfig, tp: int) -> torch.Tensor:
    """The order of the fused qkv rows that gives process r of ``tp`` the q, k and v rows of its heads.

    Row i of the reordered weight is row ``qkv_rows(...)[i]`` of the model's own layout.
    """
    q = config.n_head * config.head_dim
    kv = config.n_kv_head * config.head_dim
    rows = torch.arange(q + 2 * kv)
    parts = rows[:q].view(tp, -1), rows[q : q + kv].view(tp, -1), rows[q + kv :].view(tp, -1)
    return torch.cat(parts, dim=1).reshape(-1)


def parallelize(model: GPT | PipelineStageModule, tp_mesh, sequence_parallel: bool = False) -> None:
    """Shard every block of ``model`` (a whole GPT or one pipeline stage) over the 1-D ``tp_mesh`` (in place).

    Call before FSDP. A pipeline stage's blocks, and whichever of the embeddings, final norm and head it
    holds, are treated as the whole model's. ``sequence_parallel``: also split the residual stream, the
    norms and the residual dropout along the sequence (not with a LoRA-adapted head; see the module docstring).
    """
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        PrepareModuleInput,
        RowwiseParallel,
        parallelize_module,
    )

    tp = tp_mesh.size()
    if tp == 1:
        return
    if hasattr(model, "get_base_model"):  # LoRA: the peft wrapper around the GPT whose layers it adapted
        model = model.get_base_model()
    if not isinstance(model, (GPT, PipelineStageModule)):
        raise ConfigError(f"tensor parallelism (tensor_parallel_size={tp}) splits a GPT, not a {type(model).__name__}")
    if any(type(m).__name__ == "Linear4bit" for m in model.modules()):
        raise ConfigError(
            f"tensor parallelism (tensor_parallel_size={tp}) cannot split QLoRA's 4-bit base: "
            "use model.method=lora, or ddp for QLoRA"
        )
    if sequence_parallel and hasattr(model.lm_head, "base_layer"):
        raise ConfigError("sequence_parallel cannot split a LoRA-adapted head (leave lm_head out of lora_targets)")
    config = model.config
    check_divisible(config, tp)
    order = qkv_rows(config, tp)
    split = {"attn.qkv": "column", "attn.proj": "row", "mlp.up": "column", "mlp.down": "row"}
    if config.mlp == "swiglu":
        split["mlp.gate"] = "column"
    blocks = model.blocks.values() if isinstance(model.blocks, torch.nn.ModuleDict) else model.blocks
    # With sequence parallelism the residual stream between the layers holds this process's part of the
    # sequence: the column-wise layers gather it, the row-wise ones reduce-scatter into it.
    column = ColwiseParallel(input_layouts=Shard(1)) if sequence_parallel else ColwiseParallel()
    row = RowwiseParallel(output_layouts=Shard(1)) if sequence_parallel else RowwiseParallel()
    for block in blocks:
        for norm in (block.norm_1, block.norm_2):
            if sequence_parallel:  # each process normalises its positions (the weights' gradients summed)
                sequence_parallel_norm(norm, tp_mesh)
            else:
                replicate(norm, tp_mesh)
        if config.qk_norm:  # applied to this process's heads (dim 1): their gradients are summed over the group
            replicate(block.attn.q_norm, tp_mesh, Shard(1))
            replicate(block.attn.k_norm, tp_mesh, Shard(1))
        plan = {}
        for name, how in split.items():
            layer = block.get_submodule(name)
            if not hasattr(layer, "base_layer"):
                plan[name] = column if how == "column" else row
                continue
            # Sequence parallelism: a column-wise layer gathers the sequence for its base and adapter alike; a
            # row-wise one reduce-scatters both into the sequence's parts (B then sees this process's part).
            if sequence_parallel and how == "column":
                plan[name] = PrepareModuleInput(
                    input_layouts=Shard(1), desired_input_layouts=Replicate(), use_local_output=True
                )
            out = Shard(1) if sequence_parallel else Replicate()
            plan[f"{name}.base_layer"] = ColwiseParallel() if how == "column" else RowwiseParallel(output_layouts=out)
            for adapter in layer.lora_A:  # replicated in one, split like the base in the other (module docstring)
                a, b = layer.lora_A[adapter], layer.lora_B[adapter]
                if how == "column":
                    replicate(a, tp_mesh)
                    plan[f"{name}.lora_B.{adapter}"] = ColwiseParallel()
                else:
                    plan[f"{name}.lora_A.{adapter}"] = RowwiseParallel(output_layouts=out)
                    replicate(b, tp_mesh, Shard(1) if sequence_parallel else None)
        qkv = block.attn.qkv
        for rows in (qkv.base_layer, *qkv.lora_B.values()) if hasattr(qkv, "base_layer") else (qkv,):
            with torch.no_grad():
                rows.weight.data = rows.weight.data[order.to(rows.weight.device)]
                if rows.bias is not None:
                    rows.bias.data = rows.bias.data[order.to(rows.bias.device)]
            setattr(rows, ROWS_ATTRIBUTE, order)
        parallelize_module(block, tp_mesh, plan)
    # The vocabulary split over the group: the embedding table by rows (each process looks up the tokens
    # of its slice, the partial embeddings all-reduced), the head by output (logits of its slice only,
    # litllm.parallel.vocab's loss). A LoRA-adapted head keeps both whole (the tied pair must match).
    vocab_parallel = model.lm_head is None or not hasattr(model.lm_head, "base_layer")
    for name in ("wte", "wpe", "norm", "lm_head"):
        module = getattr(model, name)
        if module is None:
            continue
        if sequence_parallel and name == "norm":
            sequence_parallel_norm(module, tp_mesh)
        elif vocab_parallel and name == "wte":
            parallelize_module(module, tp_mesh, RowwiseParallel(input_layouts=Replicate()))
        elif vocab_parallel and name == "lm_head":
            # A pipeline stage hands plain tensors to torch.distributed.pipelining (Pipeline.vocab_logits
            # turns them back); a whole model keeps the DTensor, which says how the vocabulary is split.
            local = isinstance(model, PipelineStageModule)
            whole = Shard(1) if sequence_parallel else Replicate()  # (the head gathers the sequence)
            style = ColwiseParallel(input_layouts=whole, output_layouts=Shard(-1), use_local_output=local)
            parallelize_module(module, tp_mesh, style)
            if local:
                model.vocab_parallel_mesh = tp_mesh
        else:
            replicate(module, tp_mesh)
    # Splitting or replicating made new parameters for wte: share it with the head again (a pipeline's last
    # stage keeps its own copy of the tied matrix instead, see litllm.parallel.pipeline)
    if config.tie_embeddings and model.wte is not None and model.lm_head is not None:
        head = getattr(model.lm_head, "base_layer", model.lm_head)  # an adapted head keeps its base's weight
        head.weight = model.wte.weight
    if sequence_parallel:
        split_sequence(model, tp_mesh)


def sequence_parallel_norm(norm: torch.nn.Module, tp_mesh) -> None:
    """PyTorch's ``SequenceParallel`` on a norm, its parameters as trainable or frozen as before (the style makes
    them all trainable: a LoRA run's frozen norms would train)."""
    from torch.distributed.tensor.parallel import SequenceParallel, parallelize_module

    frozen = {name for name, p in norm.named_parameters() if not p.requires_grad}
    parallelize_module(norm, tp_mesh, SequenceParallel(use_local_output=True))
    for name, p in norm.named_parameters():
        p.requires_grad_(name not in frozen)


def split_sequence(model: GPT | PipelineStageModule, tp_mesh) -> None:
    """Sequence parallelism's hooks around the blocks of ``model``: the embeddings' output (whole on every process)
    cut into the processes' parts of the sequence before the first block; token ids right-padded to a multiple of
    the group size and the logits cut back (causal attention: padding at the end changes no earlier logit).
    A pipeline stage after the first receives its part of the sequence from the stage before (not padded:
    a pipeline's batches are a multiple of 64 tokens long, see ``LLMModule.pipeline_batch``)."""
    import torch.nn.functional as F
    from torch.distributed.tensor import DTensor, Replicate, Shard

    tp, lengths = tp_mesh.size(), []

    def scatter(module, args):  # backward: the parts' gradients gathered
        if args[0].size(1) % tp:
            raise ValueError(f"sequence parallelism over {tp} processes needs a length divisible by {tp}")
        x = DTensor.from_local(args[0], tp_mesh, [Replicate()], run_check=False)
        return (x.redistribute(tp_mesh, [Shard(1)]).to_local(), *args[1:])

    def pad(module, args, kwargs):
        idx, cache = args[0], args[1] if len(args) > 1 else kwargs.get("cache")
        if cache is not None:
            raise ValueError("a sequence-parallel model runs without a key/value cache (one new token does not split)")
        lengths.append(idx.size(1))
        return (F.pad(idx, (0, -idx.size(1) % tp)), *args[1:]), kwargs

    def cut(module, args, kwargs, logits):
        t = lengths.pop()
        return logits if logits.size(1) == t else logits[:, :t]

    setattr(model, SEQUENCE_PARALLEL, True)
    if isinstance(model, PipelineStageModule):
        model.sequence_split = tp
        if model.is_first:
            next(iter(model.blocks.values())).register_forward_pre_hook(scatter)
        return
    model.register_forward_pre_hook(pad, with_kwargs=True)
    model.register_forward_hook(cut, with_kwargs=True)
    model.blocks[0].register_forward_pre_hook(scatter)


def replicate(module: torch.nn.Module, tp_mesh, input_placement=None) -> None:
    """Make ``module``'s parameters replicated DTensors on ``tp_mesh``, its inputs and outputs staying plain.

    The inputs are the same on every process of the group (``input_placement`` None), or this process's
    part of them (e.g. ``Shard(1)``: its heads).

    Every parameter then lives on the same 2-D (data, tensor) mesh once FSDP has sharded it, which the
    gradient norm, clipping and the optimizer's foreach kernels need (they refuse a mix of meshes).
    The gradients of a replicated parameter are the same on every process of the group.
    """
    from torch.distributed.tensor import DTensor, Replicate, distribute_module

    placement = input_placement if input_placement is not None else Replicate()

    def inputs(mod, args, mesh):
        return tuple(
            DTensor.from_local(a, mesh, [placement], run_check=False)
            if isinstance(a, torch.Tensor) and not isinstance(a, DTensor)
            else a
            for a in args
        )

    def outputs(mod, out, mesh):
        return out.to_local() if isinstance(out, DTensor) else out

    distribute_module(module, tp_mesh, input_fn=inputs, output_fn=outputs)


def canonical_qkv(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (a full state dict of ``model``) with the reordered qkv rows put back in the model's layout."""
    for name, module in model.named_modules():
        order = getattr(module, ROWS_ATTRIBUTE, None)
        if order is None:
            continue
        inverse = torch.argsort(order)
        for suffix in ("weight", "bias"):
            key = f"{name}.{suffix}" if name else suffix
            if key in state:
                state[key] = state[key][inverse.to(state[key].device)]
    return state
