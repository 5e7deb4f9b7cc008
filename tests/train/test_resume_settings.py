"""What a resume compares: the architecture the run asks for, not the preset's values the data replaces later."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.train.resume import compare_settings


def module(vocab_size: int | None, n_layer: int = 2):
    config = ModelConfig.from_name("gpt-10m", n_layer=n_layer)  # the preset's vocabulary: 8,192 until setup
    if vocab_size is not None:
        config.vocab_size = vocab_size
    return SimpleNamespace(config=config, hparams={"vocab_size": vocab_size})


def saved(vocab_size: int, n_layer: int = 2) -> dict:
    config = ModelConfig.from_name("gpt-10m", n_layer=n_layer, vocab_size=vocab_size)
    return {"litllm": {"model_config": config.to_dict()}, "hyper_parameters": {}}


def test_a_vocabulary_from_the_tokenizer_is_not_compared_before_the_tokenizer_is_known():
    compare_settings(saved(vocab_size=2048), module(vocab_size=None), Path("last.ckpt"))  # the Shakespeare recipe


def test_a_vocabulary_the_run_sets_and_the_architecture_are_compared():
    with pytest.raises(CheckpointError, match="vocab_size=2048, this run has 4096"):
        compare_settings(saved(vocab_size=2048), module(vocab_size=4096), Path("last.ckpt"))
    with pytest.raises(CheckpointError, match="n_layer=3, this run has 2"):
        compare_settings(saved(vocab_size=2048, n_layer=3), module(vocab_size=None), Path("last.ckpt"))


def test_a_sharded_checkpoint_directory_is_a_checkpoint(tmp_path, capsys):
    """FSDP2, tensor and pipeline parallel runs save a directory: --ckpt_path takes it (settings from meta.pt)."""
    import torch

    from litllm.train.resume import is_sharded_checkpoint, resolve_ckpt_path

    sharded = tmp_path / "last.ckpt"
    sharded.mkdir()
    (sharded / ".metadata").write_bytes(b"")
    (sharded / "__0_0.distcp").write_bytes(b"")
    torch.save({"global_step": 7, "hyper_parameters": {}}, sharded / "meta.pt")
    assert is_sharded_checkpoint(sharded)
    assert resolve_ckpt_path(None, str(sharded)) == str(sharded)
    assert f"resuming from {sharded} (step 7)" in capsys.readouterr().err
    (sharded / ".metadata").unlink()  # not a complete distributed checkpoint any more
    with pytest.raises(FileNotFoundError, match="no such checkpoint file or sharded checkpoint directory"):
        resolve_ckpt_path(None, str(sharded))
