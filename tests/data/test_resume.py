"""A run stopped at a checkpoint and resumed trains on exactly the batches an uninterrupted run trains on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from litllm.data import LLMDataModule
from litllm.train import PretrainModule

pytestmark = pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
STEPS = 14  # with 6 batches per epoch: all of epoch 0 and 1, part of epoch 2
BLOCK, BATCH = 16, 4


class Plain(PretrainModule):
    """The pretraining module without litllm's default callbacks (sampling, export): only the data matters here."""

    def configure_callbacks(self):
        return []


class RecordBatches(L.Callback):
    """A hash of every training batch's input_ids, and its loss, in the order the trainer trains on them."""

    def __init__(self) -> None:
        self.batches: list[str] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches.append(hashlib.sha1(batch["input_ids"].numpy().tobytes()).hexdigest()[:16])
        self.losses.append(float(outputs["loss"]))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, small_tokenizer, shakespeare_documents, write_prepared) -> Path:
    """Prepared data of 27 blocks (3 validation, 24 training: 6 batches per epoch) in shards of 100 tokens."""
    documents, tokens = [], 0
    while tokens < 430:
        documents.append(shakespeare_documents[len(documents)])
        tokens += len(documents[-1]) + 1
    root = tmp_path_factory.mktemp("resume") / "prepared"
    write_prepared(root, small_tokenizer, documents, shard_tokens=100)
    return root


def fit(
    prepared: Path, root: Path, max_steps: int, ckpt_path: str | None = None, trainer: dict | None = None, **data
) -> RecordBatches:
    L.seed_everything(3)
    dm = LLMDataModule(prepared=str(prepared), block_size=BLOCK, batch_size=BATCH, val_fraction=0.1, **data)
    model = Plain(arch="tiny-gpt2", arch_overrides={"block_size": BLOCK}, warmup_steps=2, max_steps=STEPS)
    record = RecordBatches()
    run = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[record, ModelCheckpoint(dirpath=root / "checkpoints", every_n_train_steps=1, save_last=True)],
        **(trainer or {}),
    )
    run.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return record


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory):
    """``reference(**trainer)``: the record of an uninterrupted run with these trainer settings (made once)."""
    runs: dict[str, RecordBatches] = {}

    def get(**trainer) -> RecordBatches:
        key = repr(sorted(trainer.items()))
        if key not in runs:
            runs[key] = fit(prepared, tmp_path_factory.mktemp("full"), STEPS, trainer=trainer)
        return runs[key]

    return get


def test_epochs_are_reshuffled(reference):
    first, second = reference().batches[:6], reference().batches[6:12]
    assert len(set(first)) == 6 and set(first).isdisjoint(second)  # blocks of 16 tokens: no batch repeats


@pytest.mark.parametrize(
    ("stop", "data", "trainer"),
    [
        (4, {}, {}),  # inside the first epoch
        (6, {}, {}),  # at the end of the first epoch: resumes at the start of the second
        (9, {}, {}),  # inside the second epoch: its own order, not the first epoch's
        (9, {"num_workers": 2}, {}),  # dataloader workers
        (4, {}, {"limit_train_batches": 4}),  # an epoch cut short is finished too
    ],
    ids=["epoch0-mid", "epoch0-end", "epoch1-mid", "epoch1-mid-workers", "epoch0-end-limited"],
)
def test_training_resumes_at_the_same_sample(prepared, tmp_path, reference, stop, data, trainer):
    uninterrupted = reference(**trainer)
    stopped = fit(prepared, tmp_path, stop, trainer=trainer, **data)
    assert stopped.batches == uninterrupted.batches[:stop]
    resumed = fit(prepared, tmp_path, STEPS, str(tmp_path / "checkpoints" / "last.ckpt"), trainer=trainer, **data)
    assert stopped.batches + resumed.batches == uninterrupted.batches
    # The same batches after the same optimizer and schedule state: the same losses.
    assert stopped.losses + resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-5)
