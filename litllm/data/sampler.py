"""Training loaders that resume mid-epoch at the exact sample where they stopped.

``ResumableSampler`` orders a map-style dataset per epoch (a permutation seeded by ``seed + epoch``,
or the natural order) and gives rank ``r`` of ``W`` the positions ``r, r + W, ...`` of that order,
so the union of the ranks' first ``k`` batches is always a prefix of the one order, and with
``shuffle=False`` ``W`` processes see exactly the samples of one process.

``ResumableDataLoader`` is a ``DataLoader`` with ``state_dict()`` / ``load_state_dict()``: Lightning
saves that state in every checkpoint (``fit_loop`` -> ``combined_loader``) and restores it before it
creates the first iterator of a resumed run. The state is the epoch and the number of batches
already trained in it; restoring skips exactly those samples (indices only: nothing is loaded).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

_CHUNK = 1 << 16  # indices are turned into Python ints this many at a time (an epoch can hold millions)


class ResumableSampler(DistributedSampler):
    """A per-epoch order of sample indices, split across ranks, that can start part-way through an epoch.

    A ``DistributedSampler`` subclass, so Lightning leaves it in place under DDP/FSDP instead of
    injecting its own. ``skip`` is a one-shot start offset: the next iteration leaves out that many
    of this rank's samples, later ones start from the beginning. ``len()`` is always the full epoch
    (Lightning counts the restored batches itself).
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.skip = 0
        self._pending: torch.Tensor | None = None

    def order(self) -> torch.Tensor:
        """This epoch's indices for this rank, in order (before ``skip``)."""
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        if self.total_size > n:  # not drop_last: pad with the start so every rank gets num_samples
            order = torch.cat([order] * math.ceil(self.total_size / max(n, 1)))
        return order[self.rank : self.total_size : self.num_replicas]

    def start(self) -> None:
        """Fix the next iteration's indices now (epoch and skip as they are at this moment)."""
        self._pending = self.order()[self.skip :]
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        if self._pending is None:
            self.start()
        mine, self._pending = self._pending, None
        return (int(i) for start in range(0, len(mine), _CHUNK) for i in mine[start : start + _CHUNK].tolist())


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a ``ResumableSampler`` whose position can be saved and restored.

    ``progress(loader)`` returns how many batches of the current epoch have been *trained*; a data
    module under Lightning reads it from the trainer, because the loader's own count runs ahead of
    training whenever batches are prefetched. (It gets the loader as an argument rather than holding
    it: a reference cycle would leave the worker processes to the garbage collector, which stops
    them slowly.) Without it, the loader counts the batches it has handed out, which is right for a
    plain ``for batch in loader`` loop. A count of ``len(self)`` or more means the epoch is
    finished: restoring it starts the next epoch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        sampler: ResumableSampler,
        progress: Callable[[ResumableDataLoader], int | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, **kwargs)
        self.progress = progress
        self._handed_out = 0

    def __iter__(self) -> Iterator[Any]:
        self._handed_out = self.sampler.skip // self.batch_size  # a restored position counts as handed out
        # The order is fixed when the iterator is made, not at its first batch: a resumed Lightning run
        # makes its iterator right after restoring this loader's state and only then calls set_epoch with
        # the epoch it counts, which can differ (a checkpoint written by on_train_epoch_end after max_steps
        # stopped a run mid-epoch counts that epoch as done although the data position is inside it).
        self.sampler.start()
        return self._counting(super().__iter__())

    def _counting(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._handed_out += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The epoch, the batches of it already trained, and the shape of the split (to check on restore)."""
        done = self.progress(self) if self.progress is not None else None
        return {
            "epoch": self.sampler.epoch,
            "batches": self._handed_out if done is None else done,
            "batch_size": self.batch_size,
            "num_replicas": self.sampler.num_replicas,
            "samples": len(self.dataset),
            "shuffle": self.sampler.shuffle,
            "seed": self.sampler.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration start at the saved position (the next epoch if it was finished)."""
        epoch, batches = int(state["epoch"]), int(state["batches"])
        now = {"samples": len(self.dataset), "shuffle": self.sampler.shuffle, "seed": self.sampler.seed}
        same = {key: state[key] for key in now if key in state}
        now = {key: now[key] for key in same}
        if same != now:
            rank_zero_warn(
                f"the training data or its order changed since the checkpoint ({same} then, {now} now): "
                "resuming at the same position of a different order, not at the exact sample"
            )
        world, size = self.sampler.num_replicas, self.batch_size
        saved_world, saved_size = state.get("num_replicas", world), state.get("batch_size", size)
        if (saved_world, saved_size) != (world, size):
            # The ranks together have consumed a prefix of the epoch's order; continue after the
            # largest prefix whole batches of the new split cover (a few samples may repeat).
            consumed = batches * saved_size * saved_world
            batches = consumed // (size * world)
            if batches * size * world != consumed:
                rank_zero_warn(
                    f"resuming with {world} x {size} samples per step instead of {saved_world} x {saved_size}: "
                    f"{consumed - batches * size * world} samples of the epoch are seen again"
                )
        if batches >= len(self):
            epoch, batches = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self.sampler.skip = batches * size
        self._handed_out = batches


def data_parallel_split(trainer) -> tuple[int, int]:
    """This process's data-parallel rank and the number of data-parallel replicas (``(0, 1)`` without a trainer).

    The processes that split one model by tensor parallelism (``litllm.parallel.MeshStrategy``) must read
    the same batches: such a strategy says which replica a process belongs to (``data_parallel_rank`` of
    ``data_parallel_size``). Under any other strategy every process is a replica of its own.
    """
    if trainer is None:
        return 0, 1
    strategy = getattr(trainer, "strategy", None)
    size = getattr(strategy, "data_parallel_size", None)
    if isinstance(size, int):
        return strategy.data_parallel_rank, size
    return trainer.global_rank, trainer.world_size


def data_seed() -> int:
    """The run's seed (``seed_everything`` exports it), so each run's shuffle is reproducible."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def resumable_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    rank: int = 0,
    world_size: int = 1,
    seed: int | None = None,
    progress: Callable[[ResumableDataLoader], int | None] | None = None,
    **kwargs: Any,
) -> ResumableDataLoader:
    """A training loader for rank ``rank`` of ``world_size``; ``kwargs`` go to ``DataLoader``.

    With ``num_workers > 0`` the DataLoader hands whole batches of this rank's indices to its
    workers in turn, so samples stay disjoint across ranks and workers.
    """
    sampler = ResumableSampler(
        dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=data_seed() if seed is None else seed,
        drop_last=drop_last,
    )
    return ResumableDataLoader(
        dataset, batch_size=batch_size, sampler=sampler, progress=progress, drop_last=drop_last, **kwargs
    )
