"""Where a pipeline cuts the model: the block range of each stage, balanced by parameter count or given."""

from __future__ import annotations

from torch import nn

from litllm.errors import ConfigError
from litllm.model.gpt import GPT


def stage_bounds(
    block_sizes: list[int], first_extra: int, last_extra: int, stages: int, cut_points: list[int] | None = None
) -> list[tuple[int, int]]:
    """The ``[start, end)`` block range of each of ``stages`` stages.

    ``cut_points`` (the first block of stages 1 .. P-1) are taken as given; otherwise the cuts minimise the
    largest stage, counted in parameters: ``block_sizes`` per block, plus ``first_extra`` (the embeddings)
    on the first stage and ``last_extra`` (final norm and head) on the last. Every stage gets a block.
    """
    n = len(block_sizes)
    if n < stages:
        raise ConfigError(f"pipeline_parallel_size={stages} needs at least as many blocks as stages (n_layer={n})")
    if cut_points is not None:
        starts = [0, *cut_points, n]
        if any(a >= b for a, b in zip(starts, starts[1:])) or len(starts) != stages + 1:
            raise ConfigError(
                f"pipeline_cut_points={cut_points} must be {stages - 1} increasing block indices between 1 and "
                f"n_layer - 1 = {n - 1} (where each stage after the first starts)"
            )
        return list(zip(starts, starts[1:]))
    prefix = [0]
    for size in block_sizes:
        prefix.append(prefix[-1] + size)
    inf = float("inf")
    # best[s][i]: the smallest possible largest stage when blocks [0, i) form stages 0 .. s-1.
    best = [[inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0
    for s in range(1, stages + 1):
        for i in range(s, n - (stages - s) + 1):
            for j in range(s - 1, i):
                cost = prefix[i] - prefix[j] + (first_extra if s == 1 else 0) + (last_extra if s == stages else 0)
                value = max(best[s - 1][j], cost)
                if value < best[s][i]:
                    best[s][i], cut[s][i] = value, j
    ends = [n]
    for s in range(stages, 1, -1):
        ends.append(cut[s][ends[-1]])
    starts = [0, *reversed(ends[1:])]
    return list(zip(starts, [*starts[1:], n]))


def model_stage_bounds(model: GPT, stages: int, cut_points: list[int] | None = None) -> list[tuple[int, int]]:
    """``stage_bounds`` for ``model``'s blocks, embeddings and head."""

    def count(module: nn.Module | None) -> int:
        return 0 if module is None else sum(p.numel() for p in module.parameters())

    first = count(model.wte) + count(model.wpe)
    last = count(model.norm) + model.lm_head.weight.numel()  # a tied head is a matrix product all the same
    return stage_bounds([count(block) for block in model.blocks], first, last, stages, cut_points)
