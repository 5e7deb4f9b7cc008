"""The divergence guard's snapshot and rollback, step by step on a small AdamW problem (no Trainer).

A rollback must bring back the weights and the optimizer state of the snapshot every time, also a second
rollback to the same snapshot after more steps were taken: on CPU, ``Optimizer.load_state_dict`` keeps
the very tensors it is given, so a snapshot handed to it directly would become the live optimizer state
and drift with every later step. A snapshot is written into the previous one's tensors (no new memory)
and must still hold its own step's values.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from litllm.train.guard import DivergenceGuard


class Run:
    """A linear model trained by AdamW, driven through the guard's hooks as Lightning drives them."""

    def __init__(self, guard: DivergenceGuard) -> None:
        torch.manual_seed(0)
        self.guard = guard
        self.model = torch.nn.Linear(4, 3)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-2)
        self.trainer = SimpleNamespace(
            global_step=0, world_size=1, lr_scheduler_configs=[], is_global_zero=False, log_every_n_steps=1
        )
        self.module = SimpleNamespace(device=torch.device("cpu"), train_loss=None, config=None)
        self.module.parameters = self.model.parameters
        self.module.named_parameters = self.model.named_parameters

    def step(self, bad: bool = False) -> None:
        x = torch.randn(8, 4)
        loss = self.model(x).pow(2).mean()
        if bad:
            loss = loss * float("nan")
        self.optimizer.zero_grad()
        loss.backward()
        self.guard.on_before_backward(self.trainer, self.module, loss)
        self.guard.on_before_optimizer_step(self.trainer, self.module, self.optimizer)
        self.optimizer.step()
        self.trainer.global_step += 1

    def state(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Copies of the weights and of every optimizer state tensor (step counts included)."""
        weights = [p.detach().clone() for p in self.model.parameters()]
        moments = [
            v.detach().clone()
            for p in self.model.parameters()
            for _, v in sorted(self.optimizer.state[p].items())
            if isinstance(v, torch.Tensor)
        ]
        return weights, moments


def assert_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_every_rollback_restores_the_snapshot():
    guard = DivergenceGuard(policy="rollback", patience=1, snapshot_every_n_steps=3, lr_factor=1.0, max_rollbacks=5)
    run = Run(guard)
    for _ in range(3):  # snapshots before steps 0 and 3 (the guard looks before the update is applied)
        run.step()
    snapshot = run.state()  # what the snapshot before step 3 holds
    run.step()
    run.step(bad=True)  # step 4: rolled back to the weights and optimizer state of step 3
    assert guard.rollbacks == 1  # (the optimizer step after it changes nothing: no gradients)
    assert_equal(run.state()[0], snapshot[0])
    assert_equal(run.state()[1], snapshot[1])
    run.step()  # step 5: good, too early for a new snapshot; AdamW updates its state in place
    assert not all(torch.equal(x, y) for x, y in zip(run.state()[1], snapshot[1]))
    run.step(bad=True)  # step 6: rolled back again, to the same snapshot
    assert guard.rollbacks == 2
    assert_equal(run.state()[0], snapshot[0])
    assert_equal(run.state()[1], snapshot[1])


def test_a_snapshot_reuses_the_last_ones_memory_and_holds_its_own_step():
    guard = DivergenceGuard(policy="rollback", patience=1, snapshot_every_n_steps=2, lr_factor=1.0)
    run = Run(guard)
    for _ in range(3):  # snapshots before steps 0 (no optimizer state yet) and 2 (new memory: state appeared)
        run.step()
    first_weights, first_state = guard._snapshot[1], _state_tensors(guard)
    step_2 = [t.clone() for t in first_weights]
    run.step()  # step 3: no snapshot
    before_4 = run.state()  # what the snapshot before step 4's update must hold
    run.step()  # step 4: a snapshot written into step 2's tensors (same shapes), not into new ones
    assert guard._snapshot[0] == 4 and len(first_state) > 0
    assert all(a is b for a, b in zip(guard._snapshot[1], first_weights))
    assert all(a is b for a, b in zip(_state_tensors(guard), first_state))
    assert not all(torch.equal(x, y) for x, y in zip(before_4[0], step_2))  # different contents
    run.step(bad=True)  # step 5: rolled back to step 4's snapshot
    assert guard.rollbacks == 1
    assert_equal(run.state()[0], before_4[0])
    assert_equal(run.state()[1], before_4[1])


def _state_tensors(guard: DivergenceGuard) -> list[torch.Tensor]:
    return [t for state in guard._snapshot[2]["state"].values() for t in state.values() if isinstance(t, torch.Tensor)]
