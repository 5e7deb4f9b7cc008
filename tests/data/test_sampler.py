"""Training loaders: ranks and workers split the samples, and a saved position resumes at the exact sample."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset, get_worker_info

from litllm.data import LLMDataModule
from litllm.data.sampler import ResumableDataLoader, resumable_loader


class WhoLoads(Dataset):
    """Sample ``i`` is its own index and the id of the dataloader worker that loaded it (-1: the main process)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, int]:
        info = get_worker_info()
        return {"index": i, "worker": -1 if info is None else info.id}


def indices(loader) -> list[list[int]]:
    return [batch["index"].tolist() for batch in loader]


def module_loader(dataset: Dataset, rank: int, world: int, **kwargs) -> ResumableDataLoader:
    """The training loader LLMDataModule builds for rank ``rank`` of ``world`` processes."""
    dm = LLMDataModule(**kwargs)
    dm.train_dataset = dataset
    dm.trainer = SimpleNamespace(world_size=world, global_rank=rank)  # all the loader asks of the trainer
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableDataLoader)
    return loader


def test_two_ranks_by_two_workers_see_disjoint_samples_covering_the_data():
    n = 96
    seen: dict[tuple[int, int], list[int]] = defaultdict(list)
    for rank in (0, 1):
        loader = module_loader(WhoLoads(n), rank, 2, batch_size=4, num_workers=2)
        loader.sampler.set_epoch(1)
        for batch in loader:
            workers = set(batch["worker"].tolist())
            assert len(workers) == 1  # a worker makes whole batches
            seen[rank, workers.pop()] += batch["index"].tolist()
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(len(v) == n // 4 for v in seen.values())  # every worker of every rank did its share
    together = [i for v in seen.values() for i in v]
    assert len(together) == len(set(together)) == n  # disjoint, and together all of the data
    assert seen[0, 0] != sorted(seen[0, 0])  # shuffled


@pytest.mark.parametrize("shuffle", [False, True])
def test_ranks_together_take_the_one_process_batches(shuffle):
    one = indices(resumable_loader(WhoLoads(50), 8, shuffle=shuffle, seed=5))
    ranks = [indices(resumable_loader(WhoLoads(50), 4, shuffle=shuffle, seed=5, rank=r, world_size=2)) for r in (0, 1)]
    assert len(one) == len(ranks[0]) == 6
    for step, batch in enumerate(one):
        together = ranks[0][step] + ranks[1][step]
        assert sorted(together) == sorted(batch)
    if not shuffle:
        assert ranks[0][0] == [0, 2, 4, 6]  # rank r takes samples r, r + world, ...


def test_a_saved_position_resumes_at_the_next_sample():
    loader = resumable_loader(WhoLoads(40), 4, seed=1)
    loader.sampler.set_epoch(2)
    epoch = indices(loader)
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = loader.state_dict()
    assert state["epoch"] == 2 and state["batches"] == 3

    fresh = resumable_loader(WhoLoads(40), 4, seed=1)
    fresh.load_state_dict(state)
    assert indices(fresh) == epoch[3:]
    assert fresh.state_dict()["batches"] == len(fresh)
    assert len(fresh) == 10  # still the whole epoch: the trainer counts the restored batches itself
    fresh.sampler.set_epoch(3)
    assert len(indices(fresh)) == 10  # the skip applies once


def test_a_finished_epoch_resumes_at_the_start_of_the_next():
    loader = resumable_loader(WhoLoads(40), 4, seed=1)
    list(loader)
    state = loader.state_dict()
    assert (state["epoch"], state["batches"]) == (0, 10)
    fresh = resumable_loader(WhoLoads(40), 4, seed=1)
    fresh.load_state_dict(state)
    reference = resumable_loader(WhoLoads(40), 4, seed=1)
    reference.sampler.set_epoch(1)
    assert fresh.sampler.epoch == 1 and indices(fresh) == indices(reference)


def test_workers_resume_too():
    kwargs = dict(seed=3, num_workers=2, persistent_workers=True)
    epoch = indices(resumable_loader(WhoLoads(48), 4, **kwargs))
    fresh = resumable_loader(WhoLoads(48), 4, **kwargs)
    fresh.load_state_dict({"epoch": 0, "batches": 5})
    assert indices(fresh) == epoch[5:]


def test_another_split_continues_after_the_samples_already_seen():
    ranks = [resumable_loader(WhoLoads(64), 4, seed=2, rank=r, world_size=2) for r in (0, 1)]
    seen = set()
    for loader in ranks:
        it = iter(loader)
        for _ in range(3):
            seen.update(next(it)["index"].tolist())
    state = ranks[0].state_dict()
    alone = resumable_loader(WhoLoads(64), 8, seed=2)  # one process, the same global batch
    alone.load_state_dict(state)
    rest = [i for batch in indices(alone) for i in batch]
    assert len(seen) == 24 and seen.isdisjoint(rest) and seen | set(rest) == set(range(64))


def test_changed_data_warns():
    state = resumable_loader(WhoLoads(40), 4).state_dict()
    with pytest.warns(UserWarning, match="changed since the checkpoint"):
        resumable_loader(WhoLoads(44), 4).load_state_dict(state)


def test_validation_and_streaming_loaders_are_plain():
    dm = LLMDataModule(batch_size=4)
    dm.val_dataset = WhoLoads(10)
    loader = dm.val_dataloader()
    assert not isinstance(loader, ResumableDataLoader)
    assert [i for b in indices(loader) for i in b] == list(range(10))
    assert torch.utils.data.get_worker_info() is None


@pytest.mark.parametrize(("mode", "data"), [("sft", "instructions"), ("preference", "preferences")])
def test_finetuning_loaders_resume_too(tmp_path, small_tokenizer, mode, data):
    def loader() -> ResumableDataLoader:
        dm = LLMDataModule(
            mode=mode, train_data=data, tokenizer=str(small_tokenizer.path), block_size=128, batch_size=4
        )
        dm.setup("fit")
        return dm.train_dataloader()

    def first_ids(batches) -> list[list[list[int]]]:
        return [b["input_ids"].tolist() for b in batches]

    full = loader()
    assert isinstance(full, ResumableDataLoader)
    full.sampler.set_epoch(1)
    epoch = first_ids(full)
    fresh = loader()
    fresh.load_state_dict({"epoch": 1, "batches": 7})
    assert first_ids(fresh) == epoch[7:]
