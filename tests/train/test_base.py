import csv
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from litllm.data import LLMDataModule
from litllm.errors import ConfigError
from litllm.train import PretrainModule
from litllm.train.optim import warmup_cosine


def test_schedule_warms_up_linearly_then_decays_to_minimum():
    f = warmup_cosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1)
    assert f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0)  # end of warmup: the peak
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert f(110) == pytest.approx(0.1)  # the end
    assert f(500) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_weight_decay_skips_biases_norms_and_embeddings():
    module = PretrainModule(arch="tiny-gpt2", arch_overrides={"tie_embeddings": False})
    module.configure_model()
    decay, no_decay = module.parameter_groups()
    names = {id(p): n for n, p in module.model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert "lm_head.weight" in decayed and "blocks.0.attn.qkv.weight" in decayed
    assert {"wte.weight", "wpe.weight", "norm.weight", "norm.bias", "blocks.0.attn.qkv.bias"} <= skipped
    assert not any("norm" in n or n.endswith("bias") for n in decayed)
    assert len(decayed) + len(skipped) == len(names)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_optimizer_uses_schedule_and_the_fused_adamw_kernel():
    module = PretrainModule(arch="tiny-gpt2", learning_rate=1e-3, warmup_steps=4, max_steps=20)
    module.configure_model()
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert optimizer.defaults["fused"] and not optimizer.defaults["foreach"]  # on CPU too
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 4)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def tiny_trainer(tmp_path, **kwargs):
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=str(tmp_path),
    )
    return L.Trainer(**{**defaults, **kwargs})


def test_vocabulary_follows_the_tokenizer(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32, batch_size=2)
    module = PretrainModule(arch="tiny-gpt2")
    tiny_trainer(tmp_path).fit(module, dm)
    assert module.config.vocab_size == 300 and module.model.wte.num_embeddings == 300
    assert (tmp_path / "final" / "model.safetensors").is_file()


def test_data_block_longer_than_context_is_refused(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=128)
    with pytest.raises(ConfigError, match="data.block_size=128 is larger than the model's context"):
        tiny_trainer(tmp_path).fit(PretrainModule(arch="tiny-gpt2"), dm)


def test_vocab_smaller_than_tokenizer_is_refused(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32)
    with pytest.raises(ConfigError, match="smaller than the tokenizer"):
        tiny_trainer(tmp_path).fit(PretrainModule(arch="tiny-gpt2", vocab_size=200), dm)


def test_loss_at_initialisation_is_near_uniform(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32, batch_size=8)
    dm.prepare_data()
    dm.setup()
    module = PretrainModule(arch="tiny-llama", vocab_size=300)
    module.configure_model()
    batch = next(iter(dm.val_dataloader()))
    from litllm.train.pretrain import next_token_loss

    loss = next_token_loss(module(batch["input_ids"]), batch["labels"])
    assert loss.item() == pytest.approx(math.log(300), abs=0.15)


def test_labels_of_minus_100_are_ignored():
    from litllm.train.pretrain import next_token_loss

    logits = torch.randn(1, 4, 10)
    labels = torch.tensor([[1, 2, -100, -100]])
    expected = torch.nn.functional.cross_entropy(logits[0, :2], labels[0, :2])
    torch.testing.assert_close(next_token_loss(logits, labels), expected)


def test_checkpoint_from_another_tokenizer_is_refused(small_tokenizer, shakespeare_path):
    from litllm.errors import CheckpointError
    from litllm.model.tokenizer import train_bpe

    module = PretrainModule(arch="tiny-gpt2")
    module.tokenizer = small_tokenizer
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    module.on_load_checkpoint(checkpoint)  # same tokenizer: fine
    module.tokenizer = train_bpe([shakespeare_path], vocab_size=400)
    with pytest.raises(CheckpointError, match="different tokenizer"):
        module.on_load_checkpoint(checkpoint)


class GradsAtFirstStep(L.Callback):
    """The gradients the optimizer used at the first step (still present until the next zero_grad)."""

    grads: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.grads is None and (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            self.grads = {n: p.grad.clone() for n, p in pl_module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("batch_size", "accumulate"), [(4, 2), (2, 4)])
def test_sft_gradients_do_not_depend_on_how_the_batch_is_split(tmp_path, small_tokenizer, batch_size, accumulate):
    """Padded instruction batches: the step's loss is the mean over all its response tokens, however split."""
    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.model_dir import ModelDir
    from litllm.train import SFTModule

    torch.manual_seed(0)
    base = ModelDir(tmp_path / "base").save(GPT(ModelConfig.from_name("tiny-gpt2", block_size=256)), small_tokenizer)

    def grads(bs: int, acc: int) -> dict:
        dm = LLMDataModule(
            mode="sft",
            train_data="instructions",
            tokenizer=str(base),
            block_size=256,
            batch_size=bs,
            shuffle=False,
            cache_dir=str(tmp_path / "c"),
        )
        probe = GradsAtFirstStep()
        tiny_trainer(tmp_path, max_steps=1, accumulate_grad_batches=acc, callbacks=[probe], limit_val_batches=0).fit(
            SFTModule(init_from=str(base), warmup_steps=1, max_steps=2), dm
        )
        return probe.grads

    whole, split = grads(8, 1), grads(batch_size, accumulate)
    assert whole.keys() == split.keys()
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-6, msg=name)


def test_8bit_adamw_trains_and_keeps_smaller_state(tmp_path):
    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32, batch_size=4)
    states = {}
    for name in ("adamw", "adamw8bit"):
        torch.manual_seed(0)
        module = PretrainModule(arch="tiny-gpt2", arch_overrides={"n_embd": 256}, optimizer=name, warmup_steps=1)
        trainer = tiny_trainer(tmp_path / name, max_steps=3)
        trainer.fit(module, dm)
        optimizer = trainer.optimizers[0]
        states[name] = sum(
            t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)
        )
        assert (name == "adamw8bit") == ("bitsandbytes" in type(optimizer).__module__)
    assert states["adamw8bit"] < 0.5 * states["adamw"]


def test_speed_monitor_logs_tokens_mfu_and_memory(tmp_path):
    from litllm.train.callbacks import SpeedMonitor

    dm = LLMDataModule(cache_dir=str(tmp_path / "c"), vocab_size=300, block_size=32, batch_size=4)
    module = PretrainModule(arch="tiny-gpt2", warmup_steps=1)
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="logs")
    trainer = tiny_trainer(
        tmp_path, max_steps=3, log_every_n_steps=1, logger=logger, callbacks=[SpeedMonitor(peak_flops=1e12)]
    )
    trainer.fit(module, dm)
    # Written straight to the logger (not through self.log): read what the CSV logger recorded.
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("speed/tokens_per_sec")]
    assert len(rows) == 3  # one per step with log_every_n_steps=1
    metrics = rows[-1]
    tokens_per_sec = float(metrics["speed/tokens_per_sec"])
    assert tokens_per_sec > 0 and float(metrics["speed/peak_memory_gb"]) > 0.05
    assert float(metrics["speed/tokens_per_sec_per_device"]) == pytest.approx(tokens_per_sec)  # one device
    expected_mfu = module.config.flops_per_token(32) * tokens_per_sec / 1e12
    assert float(metrics["speed/mfu"]) == pytest.approx(expected_mfu, rel=1e-3)


def test_old_option_name_checkpoint_still_starts_from_the_directory(tmp_path, small_tokenizer, capsys):
    from litllm import _moved
    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT
    from litllm.model.model_dir import ModelDir
    from litllm.train import SFTModule

    base = ModelDir(tmp_path / "base").save(GPT(ModelConfig.from_name("tiny-llama", n_layer=1)), small_tokenizer)
    _moved._warned.discard("model.checkpoint")
    module = SFTModule(checkpoint=str(base))
    assert module.init_from.path == base.path
    assert module.config.n_layer == 1  # the directory's config, not the default preset's
    assert (
        capsys.readouterr().err.strip() == "litllm: model.checkpoint is now model.init_from (the old name still works)"
    )
