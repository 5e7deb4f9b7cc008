import csv

import lightning as L

from litllm.data import LLMDataModule
from litllm.train import PretrainModule
from litllm.train.callbacks import LossCurve


def test_loss_curve_records_each_validation_of_this_step(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32, batch_size=4)
    curve = LossCurve()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        val_check_interval=3,
        limit_val_batches=2,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        logger=L.pytorch.loggers.CSVLogger(tmp_path, name="logs"),
        callbacks=[curve],
    )
    trainer.fit(PretrainModule(arch="tiny-gpt2", warmup_steps=1), dm)
    with open(tmp_path / "logs" / "version_0" / "metrics.csv") as f:
        logged = [float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")]
    assert [v for _, v in curve.val] == logged and len(logged) == 2
    assert [s for s, _ in curve.val] == [3, 6]
    assert len(curve.train) == 6
    assert (tmp_path / "loss.png").stat().st_size > 1000
