"""The gradient norm of a step is computed once, and shared by the divergence guard, the ``train/grad_norm``
metric and gradient clipping, without changing what clipping does."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch

from litllm.data import LLMDataModule
from litllm.train import PretrainModule

STEPS = 6


class LightningClipping(PretrainModule):
    """Clipping as Lightning does it on its own: ``clip_grad_norm_``, which computes the norm again."""

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        L.LightningModule.configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm)


class RecordLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(pl_module.train_loss))


def train(tmp_path: Path, name: str, module_class: type[PretrainModule]) -> tuple[list[float], list[float], dict]:
    L.seed_everything(3)
    dm = LLMDataModule(cache_dir=str(tmp_path / "cache"), vocab_size=300, block_size=32, batch_size=4)
    module = module_class(arch="tiny-gpt2", warmup_steps=1, learning_rate=1e-2, arch_overrides={"dropout": 0.1})
    record = RecordLosses()
    logger = L.pytorch.loggers.CSVLogger(tmp_path / name, name="logs")
    trainer = L.Trainer(
        accelerator="cpu", max_steps=STEPS, accumulate_grad_batches=2, gradient_clip_val=0.05,
        log_every_n_steps=1, limit_val_batches=0, logger=logger, callbacks=[record], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path / name,
    )  # fmt: skip
    trainer.fit(module, dm)
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        norms = [float(row["train/grad_norm"]) for row in csv.DictReader(f) if row.get("train/grad_norm")]
    return record.losses, norms, {k: v.clone() for k, v in module.backbone.state_dict().items()}


def test_one_norm_per_step_logged_as_clipping_computes_it(tmp_path, monkeypatch):
    computed = []
    original = torch.nn.utils.get_total_norm
    monkeypatch.setattr(torch.nn.utils, "get_total_norm", lambda *a, **k: computed.append(1) or original(*a, **k))
    losses, norms, weights = train(tmp_path, "shared", PretrainModule)
    # The guard (every step on CPU), the metric (every step here) and clipping: one computation per step.
    assert len(computed) == STEPS

    returned = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: returned.append(float(clip(*a, **k))))
    ref_losses, ref_norms, ref_weights = train(tmp_path, "lightning", LightningClipping)
    assert len(returned) == STEPS and max(returned) > 0.05  # clipping did act
    assert norms == returned == ref_norms  # the logged norm is the one clipping computes, bit for bit
    assert losses == ref_losses and len(losses) == 2 * STEPS
    for name, tensor in weights.items():
        assert torch.equal(tensor, ref_weights[name]), name


def test_clipping_by_value_or_by_zero_is_left_to_lightning():
    from litllm.train.optim import clip_with_norm

    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.full((3,), 4.0)
    optimizer = torch.optim.SGD([param], lr=0.1)
    precision = L.pytorch.plugins.precision.Precision()
    assert not clip_with_norm(precision, optimizer, 1.0, "value", lambda: torch.tensor(6.93))
    assert not clip_with_norm(precision, optimizer, 0.0, "norm", lambda: torch.tensor(6.93))
    assert torch.equal(param.grad, torch.full((3,), 4.0))
    assert clip_with_norm(precision, optimizer, 1.0, "norm", lambda: torch.linalg.vector_norm(param.grad))
    assert float(torch.linalg.vector_norm(param.grad)) == pytest.approx(1.0, rel=1e-5)
