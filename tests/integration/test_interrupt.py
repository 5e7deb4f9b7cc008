"""Interrupted runs keep their work: Ctrl-C or SIGTERM saves a checkpoint, ``--ckpt_path last`` continues it."""

from __future__ import annotations

import pytest
import torch

from integration.test_cli_fit import column, read_metrics, tiny_fit_args
from litllm.cli import main

pytestmark = pytest.mark.integration
DROPOUT = ("--model.arch_overrides", "{block_size: 32, dropout: 0.1}")  # resumes bit-exactly all the same


def interrupted_args(root, cache, steps, at, how):
    return tiny_fit_args(
        root,
        cache,
        steps,
        *DROPOUT,
        "--trainer.callbacks+=integration.interrupt.InterruptAt",
        f"--trainer.callbacks.step={at}",
        f"--trainer.callbacks.how={how}",
    )


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_interrupted_run_saves_a_checkpoint_and_resumes_exactly(how, tmp_path, capsys):
    cache = tmp_path / "cache"
    whole = tmp_path / "whole"
    main(tiny_fit_args(whole, cache, 14, *DROPOUT))
    root = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(interrupted_args(root, cache, 14, 6, how))
    assert stop.value.code not in (0, None)  # an interrupted run does not report success
    saved = root / "checkpoints" / "interrupted.ckpt"
    step = torch.load(saved, map_location="cpu", weights_only=True)["global_step"]
    assert step in (6, 7)  # SIGTERM is acted on at the next step
    assert f"checkpoint written to {saved}" in capsys.readouterr().err
    assert not (root / "final").exists()
    main(tiny_fit_args(root, cache, 14, *DROPOUT, "--ckpt_path", "last"))
    assert f"resuming from {saved} (step {step})" in capsys.readouterr().err
    assert not saved.exists()  # the finished run removed it
    losses = dict(column(read_metrics(whole), "train/loss"))
    resumed = {s: v for s, v in column(read_metrics(root), "train/loss") if s >= step}
    assert sorted(resumed) == [s for s in sorted(losses) if s >= step]  # continues at the saved step
    for s in resumed:  # and on the same curve as the run that was never stopped
        assert resumed[s] == losses[s], s  # bit-exact, dropout included


def test_resume_last_with_nothing_to_resume_says_so(tmp_path, capsys):
    root = tmp_path / "run"
    main(tiny_fit_args(root, tmp_path / "cache", 2, "--ckpt_path", "last"))
    err = capsys.readouterr().err
    assert f"--ckpt_path last: no checkpoint to resume in {root / 'checkpoints'}; training starts at step 0" in err
    assert "HINT" not in err  # Lightning's own multi-line warning is not shown on top


def test_unsafe_or_truncated_checkpoint_is_one_line(tmp_path, capsys):
    import pickle

    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "payload": object()}, bad, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(SystemExit) as stop:
        main(tiny_fit_args(tmp_path / "run", tmp_path / "cache", 2, "--ckpt_path", str(bad)))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and err[-1].startswith(f"litllm: error: {bad} is not a safe checkpoint")
    assert not any("weights_only=False" in line for line in err)
    short = tmp_path / "short.ckpt"
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, whole)
    short.write_bytes(whole.read_bytes()[:500])
    with pytest.raises(SystemExit):
        main(tiny_fit_args(tmp_path / "run", tmp_path / "cache", 2, "--ckpt_path", str(short)))
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(f"litllm: error: {short} is truncated or not a checkpoint")
    )


def test_resume_uses_the_command_line_and_says_what_changed(tmp_path, capsys):
    root, cache = tmp_path / "run", tmp_path / "cache"
    main(tiny_fit_args(root, cache, 4))
    main(tiny_fit_args(root, cache, 6, "--ckpt_path", "last", "--model.learning_rate", "0.5"))
    err = capsys.readouterr().err
    assert "resuming with model.learning_rate=0.5 (the checkpoint was trained with 0.003)" in err
    saved = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["learning_rate"] == 0.5  # what the run used, not the checkpoint's
    with pytest.raises(SystemExit) as stop:
        main(
            tiny_fit_args(
                root, cache, 8, "--ckpt_path", "last", "--model.arch_overrides", "{block_size: 32, n_layer: 1}"
            )
        )
    assert stop.value.code == 1
    assert "was trained with model n_layer=2, this run has 1" in capsys.readouterr().err
