"""Pipeline parallelism for the backbone: consecutive blocks on consecutive processes, micro-batches in flight.

``MeshStrategy(pipeline_parallel_size=P)`` cuts the GPT's blocks into P stages (``litllm.parallel.stages``:
balanced by parameter count, or at explicit cut points). Each process of a pipeline keeps one stage
(``PipelineStageModule``): the first also the token and position embeddings, the last also the final
norm, the head and the loss. A training step cuts the batch into micro-batches and runs PyTorch's own
schedules (``torch.distributed.pipelining``: ``ScheduleGPipe`` or ``Schedule1F1B``) over them, forward
and backward, inside Lightning's one ``training_step`` (``Pipeline``); validation runs the forward
schedule and hands the last stage's loss to every stage.

Every process builds the whole model first, from the same seed, and keeps its stage: the weights are
exactly those of a one-process run (the rest is freed). A stage keeps the GPT's parameter names
(``blocks.5.attn.qkv.weight`` stays ``blocks.5...`` on the stage that holds block 5), so checkpoints and
the final model directory (gathered from every stage by ``gather_full_state``) name tensors as one
process does.

A tied head (GPT-2) is the embedding matrix used again at the end: the first stage holds it as ``wte``,
the last as ``lm_head``, two copies that start equal. Their gradients are summed between the two stages
before every optimizer step (``Pipeline.sync_tied_gradients``), so both copies take the same update, as
the single shared matrix does in one process; the gradient norm counts it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from litllm.errors import ConfigError
from litllm.model.gpt import GPT, embed, output_logits, rope_at
from litllm.parallel.stages import model_stage_bounds, stage_bounds  # noqa: F401 (where to cut: its own module)
from litllm.parallel.vocab import whole_logits


class PipelineStageModule(nn.Module):
    """The part of a ``GPT`` one pipeline stage computes, under the GPT's own parameter names.

    ``forward`` maps token ids (first stage) or the residual stream from the previous stage to the residual
    stream after this stage's blocks, or to logits (last stage).

    Args:
        model: The whole model (its modules are taken, not copied).
        start: First block of the stage.
        end: One past its last block.
        is_first: Whether the stage holds the embeddings.
        is_last: Whether it holds the final norm and the head.
    """

    def __init__(self, model: GPT, start: int, end: int, is_first: bool, is_last: bool) -> None:
        super().__init__()
        self.config = model.config
        self.is_first, self.is_last = is_first, is_last
        self.wte = model.wte if is_first else None
        self.wpe = model.wpe if is_first else None
        self.drop = model.drop
        # String keys of the global block indices: the state dict names match the whole model's.
        self.blocks = nn.ModuleDict({str(i): model.blocks[i] for i in range(start, end)})
        self.norm = model.norm if is_last else None
        self.lm_head = model.lm_head if is_last else None
        self.tied_head = bool(is_last and not is_first and model.config.tie_embeddings)
        if self.tied_head:  # this stage's own copy of the embedding matrix (see the module documentation)
            tied = model.wte.weight
            self.lm_head.weight = nn.Parameter(tied.detach().clone(), requires_grad=tied.requires_grad)
        self.vocab_parallel_mesh = None  # the tensor-parallel mesh when the head is split by vocabulary
        self.sequence_split = 1  # processes splitting the sequence a later stage receives (sequence parallelism)
        if model.config.position == "rope":
            self.register_buffer("rope_cos", model.rope_cos, persistent=False)
            self.register_buffer("rope_sin", model.rope_sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_first:
            x = embed(self, x)
        # (under sequence parallelism a later stage receives its process's part of the sequence)
        rope = rope_at(self, 0, x.size(1) * (1 if self.is_first else self.sequence_split))
        for block in self.blocks.values():
            x = block(x, rope)
        return output_logits(self, x) if self.is_last else x

    def embedding_weights(self) -> list[nn.Parameter]:
        """The embedding tables this stage holds (not weight-decayed), the tied head's copy included."""
        tables = [m.weight for m in (self.wte, self.wpe) if m is not None]
        return tables + ([self.lm_head.weight] if self.tied_head else [])


class Pipeline:
    """One process's side of a pipeline: its stage, the schedule, and the collectives between stages.

    Args:
        module: This process's stage (after FSDP2 has sharded it over the stage's data-parallel replicas).
        group: The process group of the pipeline (the P processes with this one's data-parallel rank).
        stage: This process's stage index.
        stages: Number of stages P.
        device: The stage's device.
        schedule: ``gpipe`` or ``1f1b``.
        microbatches: Micro-batches per training batch.
        tie_group: The group of the first and the last stage when the head is tied, else None.
    """

    def __init__(
        self,
        module: PipelineStageModule,
        group,
        stage: int,
        stages: int,
        device: torch.device,
        schedule: str,
        microbatches: int,
        tie_group=None,
    ) -> None:
        self.module, self.group, self.stage, self.stages = module, group, stage, stages
        self.device, self.schedule, self.microbatches = device, schedule, microbatches
        self.tie_group = tie_group
        self._runners: dict[tuple, Any] = {}
        self._loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self._tied_synced = False

    @property
    def is_first(self) -> bool:
        return self.stage == 0

    @property
    def is_last(self) -> bool:
        return self.stage == self.stages - 1

    def _runner(self, train: bool, shape: tuple[int, ...], microbatches: int):
        """The schedule for batches of ``shape``: made once per shape (the stages exchange the tensor shapes
        of the first micro-batch when a schedule starts, and keep buffers of those shapes)."""
        from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

        key = (train, shape, microbatches)
        if key not in self._runners:
            stage = PipelineStage(self.module, self.stage, self.stages, self.device, group=self.group)
            kind = Schedule1F1B if train and self.schedule == "1f1b" else ScheduleGPipe
            # scale_grads=False: the loss function scales each micro-batch's loss itself; the schedule's
            # own scaling would also divide gradients accumulated over earlier batches.
            self._runners[key] = kind(stage, n_microbatches=microbatches, loss_fn=self._loss, scale_grads=False)
        return self._runners[key]

    def _loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._loss_fn(self.vocab_logits(output), target)

    def vocab_logits(self, output: torch.Tensor) -> torch.Tensor:
        """The last stage's output as logits: under tensor parallelism this process's slice of the vocabulary, as
        a DTensor again (the schedule passes plain tensors), so that ``litllm.parallel.vocab`` sees the split."""
        from torch.distributed.tensor import DTensor, Shard

        mesh = self.module.vocab_parallel_mesh
        if mesh is None:
            return output
        shape = (*output.shape[:-1], self.module.config.vocab_size)  # (the slices may differ in size: say the whole)
        stride = torch.empty(shape, device="meta").stride()
        return DTensor.from_local(output, mesh, [Shard(output.dim() - 1)], run_check=False, shape=shape, stride=stride)

    def _run(self, runner, input_ids: torch.Tensor, labels: torch.Tensor, train: bool) -> list[torch.Tensor]:
        losses: list[torch.Tensor] = []
        args = (input_ids,) if self.is_first else ()
        kwargs = {"target": labels, "losses": losses} if self.is_last else {}
        if train:
            runner.step(*args, return_outputs=False, **kwargs)
        else:
            runner.eval(*args, return_outputs=False, **kwargs)
        return losses

    def train_step(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Forward and backward of every micro-batch; gradients accumulate into the stage's ``.grad``.

        ``loss_fn(logits, labels)`` of a micro-batch is what its backward starts from. Returns the sum
        of the micro-batches' losses, the same on every stage.
        """
        n = self.microbatches
        if input_ids.size(0) % n:
            raise ConfigError(
                f"a batch of {input_ids.size(0)} sequences does not split into pipeline_microbatches={n}: "
                "choose a data.batch_size (per data-parallel replica) that the micro-batches divide"
            )
        self._loss_fn = loss_fn
        losses = self._run(self._runner(True, tuple(input_ids.shape), n), input_ids, labels, train=True)
        self._tied_synced = False
        return self.from_last_stage(torch.stack([x.detach() for x in losses]).sum() if self.is_last else None)

    def eval_step(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        microbatches: int | None = None,
    ) -> torch.Tensor:
        """Forward only; the sum of ``loss_fn`` over the micro-batches, the same on every stage.

        A batch is cut into ``microbatches`` micro-batches, by default the largest number up to the
        pipeline's that divides it (a last, smaller validation batch included).
        """
        size = input_ids.size(0)
        n = microbatches or max(k for k in range(1, min(self.microbatches, size) + 1) if size % k == 0)
        self._loss_fn = loss_fn
        losses = self._run(self._runner(False, tuple(input_ids.shape), n), input_ids, labels, train=False)
        return self.from_last_stage(torch.stack([x.detach() for x in losses]).sum() if self.is_last else None)

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        """The logits of ``input_ids`` (the same on every stage) on the last stage (None elsewhere), forward only,
        as one micro-batch: for sampling, whose batches keep one shape (so one schedule serves every step)."""
        self._loss_fn = lambda output, target: torch.zeros((), device=self.device)  # eval computes a loss: none wanted
        runner = self._runner(False, tuple(input_ids.shape), 1)
        args = (input_ids,) if self.is_first else ()
        kwargs = {"target": torch.zeros_like(input_ids)} if self.is_last else {}
        out = runner.eval(*args, return_outputs=True, **kwargs)
        return whole_logits(self.vocab_logits(out)) if self.is_last else None

    def from_last_stage(self, value: torch.Tensor | None) -> torch.Tensor:
        """The last stage's float32 scalar ``value``, broadcast to every stage of the pipeline."""
        out = value.float().reshape(()) if value is not None else torch.zeros((), device=self.device)
        out = out.to(self.device).contiguous()
        dist.broadcast(out, group=self.group, group_src=self.stages - 1)
        return out

    # ------------------------------------------------------------------ gradients
    def sync_tied_gradients(self) -> None:
        """Sum the tied embedding's gradient between its two copies (once per optimizer step)."""
        if self.tie_group is None or self._tied_synced:
            return
        self._tied_synced = True
        if not (self.is_first or self.is_last):
            return
        weight = self.module.wte.weight if self.is_first else self.module.lm_head.weight
        grad = weight.grad
        if grad is None:  # no backward this step (both copies alike: the divergence guard skipped it)
            return
        dist.all_reduce(grad.to_local() if hasattr(grad, "to_local") else grad, group=self.tie_group)

    def untied(self, parameters: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
        """``parameters`` without the tied head's copy (its gradient is the embedding's, counted on the first
        stage): the ones whose gradient norm ``gradient_norm`` combines."""
        tied = self.module.lm_head.weight if self.module.tied_head else None
        return [p for p in parameters if p is not tied]

    def gradient_norm(self, local: torch.Tensor) -> torch.Tensor:
        """The 2-norm of the whole model's gradient from this stage's (``local``, of ``untied`` parameters):
        every stage's squares summed."""
        square = (local.float() * local.float()).reshape(()).to(self.device).contiguous()
        dist.all_reduce(square, group=self.group)
        return square.sqrt()


def build_pipeline(model: GPT, mesh, strategy, device: torch.device) -> tuple[PipelineStageModule, Pipeline]:
    """Cut ``model`` as ``strategy`` (a ``MeshStrategy``) says and keep this process's stage of ``mesh``'s pipeline.

    ``model`` may carry LoRA adapters (peft's layers inside its blocks: pass the GPT peft wraps); the stage
    keeps them under the same names, frozen and trainable parameters alike.

    Returns the stage module (not yet sharded) and the ``Pipeline`` that runs it. Collective: every process
    calls it (the tied-head groups are made on every process).
    """
    stages = strategy.pipeline_parallel_size
    pp_mesh = mesh["pipeline_parallel"]
    stage = pp_mesh.get_local_rank()
    bounds = model_stage_bounds(model, stages, strategy.pipeline_cut_points)
    start, end = bounds[stage]
    module = PipelineStageModule(model, start, end, is_first=stage == 0, is_last=stage == stages - 1)
    tie_group = None
    if model.config.tie_embeddings:
        # One group per pipeline, of its first and last process; new_group is collective, so every process
        # makes every group and keeps its own.
        pipelines = mesh.mesh.reshape(stages, -1).t().tolist()  # ranks of each pipeline, stage by stage
        me = dist.get_rank()
        for ranks in pipelines:
            group = dist.new_group([ranks[0], ranks[-1]])
            if me in (ranks[0], ranks[-1]):
                tie_group = group
    pipeline = Pipeline(
        module,
        pp_mesh.get_group(),
        stage,
        stages,
        device,
        strategy.pipeline_schedule,
        strategy.pipeline_microbatches,
        tie_group,
    )
    return module, pipeline


def gather_full_state(state: dict[str, torch.Tensor], pipeline: Pipeline) -> dict[str, torch.Tensor]:
    """Every stage's full ``state`` (this stage's, already gathered over FSDP) merged on global rank 0.

    Collective over the whole world; only the pipeline of global rank 0 sends (the other data-parallel
    replicas hold the same weights). The other ranks get an empty dict.
    """
    sends = dist.get_global_rank(pipeline.group, 0) == 0  # this process is in global rank 0's pipeline
    gathered: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(state if sends else None, gathered, dst=0)
    if gathered is None:
        return {}
    merged: dict[str, torch.Tensor] = {}
    for part in gathered:
        merged.update(part or {})
    return merged
