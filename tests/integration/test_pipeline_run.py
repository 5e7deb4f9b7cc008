"""`litllm run` end to end: a shrunk zero-to-chat pipeline with every kind of stage (tokenizer, prepare,
pretrain, SFT, DPO, evaluate), stopped in the middle of SFT, resumed, then re-run with nothing to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SMALL = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 128, "dropout": 0.0}
QUIET = {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False, "trainer.log_every_n_steps": 1}


def pipeline_recipe(tmp: Path, corpus: Path, sft_steps: int) -> Path:
    cache = {"data.cache_dir": str(tmp / "cache")}
    stages = {
        "tok": {"run": "tokenizer train", "data": str(corpus), "set": {"vocab_size": 384, "min_frequency": 1}},
        "prep": {
            "run": "prepare",
            "recipe": "recipes/prepare_web.yaml",
            "tokenizer": "tok",
            "set": {"input": str(corpus), "clean": False, "processes": 1, "dedup.near": False},
        },
        "pretrain": {
            "run": "fit",
            "recipe": "recipes/pretrain_shakespeare.yaml",
            "prepared": "prep",
            "set": {
                "model.arch_overrides": SMALL,
                "model.warmup_steps": 2,
                "data.block_size": 64,
                "data.batch_size": 4,
                "trainer.max_steps": 6,
                "trainer.val_check_interval": 3,
                "trainer.limit_val_batches": 2,
                "trainer.callbacks": [],
                **cache,
                **QUIET,
            },
        },
        "sft": {
            "run": "finetune full",
            "recipe": "recipes/sft_full_tiny.yaml",
            "from": "pretrain",
            "set": {
                "model.warmup_steps": 2,
                "data.block_size": 128,
                "data.max_length": 128,
                "data.batch_size": 4,
                "trainer.max_steps": sft_steps,
                "trainer.val_check_interval": 5,
                "trainer.limit_val_batches": 2,
                "trainer.callbacks": [
                    {
                        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                        "init_args": {"save_last": True, "every_n_train_steps": 2},
                    }
                ],
                **cache,
                **QUIET,
            },
        },
        "dpo": {
            "run": "finetune dpo",
            "recipe": "recipes/dpo_lora_tiny.yaml",
            "from": "sft",
            "set": {
                "data.block_size": 128,
                "data.max_length": 128,
                "data.batch_size": 4,
                "trainer.max_steps": 4,
                "trainer.val_check_interval": 2,
                "trainer.limit_val_batches": 2,
                "trainer.callbacks": [],
                **cache,
                **QUIET,
            },
        },
        "evaluate": {"run": "evaluate", "prompts": "recipes/zero_to_chat_prompts.json", "data": str(corpus)},
    }
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"out_dir": str(tmp / "out"), "stages": stages}, sort_keys=False))
    return path


def litllm_run(recipe: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "litllm", "run", "--config", str(recipe), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 420) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare_path) -> Path:
    text = shakespeare_path.read_text()[:120_000]
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with open(path, "w") as handle:
        for start in range(0, len(text), 1500):
            handle.write(json.dumps({"text": text[start : start + 1500]}) + "\n")
    return path


def test_pipeline_runs_resumes_after_a_stop_and_then_reuses_every_stage(tmp_path, corpus):
    recipe = pipeline_recipe(tmp_path, corpus, sft_steps=40)
    out = tmp_path / "out"

    # 1. Stop the run in the middle of SFT (SIGTERM, as a scheduler would): the stage checkpoints and stops.
    process = litllm_run(recipe)
    deadline = time.time() + 300
    while not (out / "sft" / "checkpoints" / "last.ckpt").is_file():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.time() < deadline, "SFT never wrote a checkpoint"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    code, log = finish(process)
    assert code != 0, log[-3000:]
    assert "sft was stopped" in log and "litllm finetune full" in log
    assert json.loads((out / "sft" / "stage.json").read_text())["status"] == "stopped"
    for name in ("tok", "prep", "pretrain"):
        assert json.loads((out / name / "stage.json").read_text())["status"] == "done"
    assert not (out / "dpo").exists()

    # 2. The same command again: finished stages are reused, SFT resumes from its checkpoint, the rest runs.
    code, log = finish(litllm_run(recipe))
    assert code == 0, log[-3000:]
    for name in ("tok", "prep", "pretrain"):
        assert f"{name}: done earlier with the same inputs and settings" in log
    assert "sft: stopped part-way earlier: resuming from its last checkpoint" in log
    assert "--ckpt_path last" in log
    sft_steps = json.loads((out / "sft" / "stage.json").read_text())
    assert sft_steps["status"] == "done"
    for model in ("pretrain", "sft", "dpo"):
        result = json.loads((out / "evaluate" / f"{model}.json").read_text())
        assert result["bits_per_byte"] > 0 and len(result["answers"]) == 10 and result["checked"] == 8
    assert (out / "chat" / "config.json").is_file()  # the last training stage's model, ready for litllm chat
    report = (out / "report.md").read_text()
    for section in (
        "## Summary",
        "## Machine and software",
        "## Data",
        "### pretrain (fit)",
        "### sft (finetune full)",
    ):
        assert section in report
    assert "held-out preference accuracy" in report and "Greedy answers to the fixed prompts" in report
    assert "data:image/png;base64," in (out / "report.html").read_text()  # images inline

    # 3. Nothing changed: nothing runs.
    started = time.time()
    code, log = finish(litllm_run(recipe))
    assert code == 0 and "$ litllm" not in log, log[-3000:]
    assert time.time() - started < 60

    # 4. --stages runs the named stage again (the old outputs kept aside) and reuses the others.
    code, log = finish(litllm_run(recipe, "--stages", "evaluate"))
    assert code == 0, log[-3000:]
    assert "evaluate: run again (--stages)" in log and (out / "evaluate.old-1" / "sft.json").is_file()
    assert "pretrain: not selected; reusing" in log
