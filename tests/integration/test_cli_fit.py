"""End-to-end runs of the `litllm` command on the built-in corpus (in-process, CPU, tiny model)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from litllm.cli import main
from litllm.infer.generate import generate
from litllm.model.model_dir import ModelDir

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SHAKESPEARE_RECIPE = str(REPO / "recipes" / "pretrain_shakespeare.yaml")


def tiny_recipe(root: Path) -> str:
    """The Shakespeare recipe with checkpoints every 10 steps and short samples (list items cannot be set by flags)."""
    recipe = yaml.safe_load(Path(SHAKESPEARE_RECIPE).read_text())
    for callback in recipe["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["every_n_train_steps"] = 10
        if callback["class_path"].endswith("SampleGeneration"):
            callback["init_args"]["max_new_tokens"] = 8
    path = root.parent / "tiny_recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def tiny_fit_args(root: Path, cache: Path, steps: int, *extra: str) -> list[str]:
    """The Shakespeare recipe shrunk to a few seconds."""
    return [
        "fit",
        "--config",
        tiny_recipe(root),
        "--model.arch",
        "tiny-gpt2",
        "--model.arch_overrides",
        "{block_size: 32}",
        "--model.warmup_steps",
        "5",
        "--model.learning_rate",
        "3e-3",
        "--data.vocab_size",
        "512",
        "--data.block_size",
        "32",
        "--data.batch_size",
        "8",
        "--data.cache_dir",
        str(cache),
        "--trainer.max_steps",
        str(steps),
        "--trainer.val_check_interval",
        "10",
        "--trainer.limit_val_batches",
        "4",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(root),
        *extra,
    ]


def read_metrics(root: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((root / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return rows


def column(rows, key):
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def test_fit_lowers_loss_and_writes_a_model_directory(tmp_path):
    root, cache = tmp_path / "run", tmp_path / "cache"
    main(tiny_fit_args(root, cache, 40))
    rows = read_metrics(root)
    train = column(rows, "train/loss")
    val = column(rows, "val/loss")
    assert len(val) >= 3
    assert val[-1][1] < val[0][1] - 0.1  # still improving after the first validation
    assert val[-1][1] < math.log(512) - 0.8  # far below the untrained (uniform) loss
    assert sum(v for _, v in train[-5:]) / 5 < sum(v for _, v in train[:5]) / 5
    assert column(rows, "val/bpb") and column(rows, "speed/tokens_per_sec") and column(rows, "train/grad_norm")
    assert (root / "loss.png").stat().st_size > 1000
    assert "--- step" in (root / "samples.txt").read_text()
    assert (root / "checkpoints" / "tokenizer.json").is_file()  # the tokenizer sits next to the checkpoints
    model, tokenizer = ModelDir(root / "final").load()
    assert model.config.vocab_size == tokenizer.vocab_size == 512
    out = generate(model, torch.tensor([tokenizer.encode("ROMEO:")]), 5, temperature=0)
    assert out.shape[1] == len(tokenizer.encode("ROMEO:")) + 5


def test_resume_continues_steps_and_loss_curve(tmp_path):
    root, cache = tmp_path / "run", tmp_path / "cache"
    main(tiny_fit_args(root, cache, 20))
    first = column(read_metrics(root), "train/loss")
    assert (root / "checkpoints" / "last.ckpt").is_file()
    saved = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 20 and "litllm" in saved
    main(tiny_fit_args(root, cache, 30, "--ckpt_path", "last"))
    rows = read_metrics(root)
    resumed = [(s, v) for s, v in column(rows, "train/loss") if s >= 20]
    assert resumed and min(s for s, _ in resumed) >= 20  # steps continue, they do not restart at 0
    start_loss = sum(v for _, v in first[:3]) / 3
    end_before = sum(v for _, v in first[-3:]) / 3
    resumed_start = sum(v for _, v in resumed[:3]) / 3
    # the curve picks up where it stopped instead of going back to the untrained loss
    assert abs(resumed_start - end_before) < 0.5 * (start_loss - end_before)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--model.learnin_rate", "1"], "unknown option model.learnin_rate; did you mean model.learning_rate?"),
        (["--model.init_args.n_layers", "3"], "unknown option model.n_layers"),
        (["--trainer.maxi_steps", "3"], "unknown option trainer.maxi_steps; did you mean trainer.max_steps?"),
        (["--tranier.max_steps", "3"], "unknown option tranier.max_steps; did you mean trainer.max_steps?"),
        (["--data.batch_size", "abc"], "data.batch_size: expected int, got abc"),
    ],
)
def test_wrong_config_key_or_value_is_one_line(args, line, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", SHAKESPEARE_RECIPE, *args])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"litllm: error: {line}"]


def test_missing_recipe_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "recipes/pretrain_shakespere.yaml"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("litllm: error: recipe not found:") and "shakespere" in err[0]


def test_wrong_arch_override_is_named(tmp_path, capsys):
    args = tiny_fit_args(tmp_path / "run", tmp_path / "cache", 2)
    args += ["--model.arch_overrides", "{n_layers: 3}"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "litllm: error:" in err and "n_layers" in err


def test_missing_data_file_is_named(tmp_path, capsys):
    args = tiny_fit_args(tmp_path / "run", tmp_path / "cache", 2) + ["--data.train_data", str(tmp_path / "nope.txt")]
    with pytest.raises(SystemExit):
        main(args)
    assert "nope.txt" in capsys.readouterr().err


def test_checkpoint_of_another_shape_names_what_differs(tmp_path, capsys):
    root, cache = tmp_path / "run", tmp_path / "cache"
    main(tiny_fit_args(root, cache, 10))
    args = tiny_fit_args(root, cache, 12, "--ckpt_path", "last") + [
        "--model.arch_overrides",
        "{block_size: 32, n_embd: 32}",
    ]
    with pytest.raises(SystemExit):
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "was trained with model n_embd=64, this run has 32: a run resumes with the architecture it was trained with"
    )


TRAINING_RECIPES = sorted(
    p for p in (REPO / "recipes").glob("*.yaml") if not p.name.startswith(("prepare_", "zero_to_chat"))
)  # prepare's settings and the pipelines (tests/pipeline) are not LightningCLI recipes


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_and_validates(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: litllm.train" in printed and "litllm.data.LLMDataModule" in printed
    assert recipe.read_text().startswith(
        f"# litllm fit --config recipes/{recipe.name}"
    ) or recipe.read_text().startswith("# litllm ")


def test_124m_recipe_runs_shrunk_on_local_data(tmp_path, small_tokenizer, shakespeare_path):
    """The GPU recipe, with the model shrunk, the CPU as device and a local file instead of the hub."""
    root = tmp_path / "run"
    main(
        [
            "fit",
            "--config",
            str(REPO / "recipes" / "pretrain_124m.yaml"),
            "--model.arch_overrides",
            "{n_layer: 1, n_head: 2, n_embd: 32, block_size: 64}",
            "--model.max_steps",
            "4",
            "--model.warmup_steps",
            "1",
            "--data.train_data",
            str(shakespeare_path),
            "--data.streaming",
            "false",
            "--data.tokenizer",
            str(small_tokenizer.path),
            "--data.block_size",
            "64",
            "--data.batch_size",
            "2",
            "--data.num_workers",
            "0",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.strategy",
            "auto",
            "--trainer.max_steps",
            "4",
            "--trainer.accumulate_grad_batches",
            "2",
            "--trainer.val_check_interval",
            "4",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    model, _ = ModelDir(root / "final").load()
    assert model.config.n_layer == 1 and model.config.vocab_size == 512
    assert column(read_metrics(root), "val/loss")


def test_speedrun_recipe_runs_shrunk_with_every_option(tmp_path, small_tokenizer, shakespeare_path):
    """The speed-run recipe at a tiny width on the CPU: rotary, RMSNorm, QK-norm, ReLU², zero-initialised
    projections, untied head, soft-capped logits, Muon and WSD together, from its own YAML (only the shape
    and the data change)."""
    recipe = yaml.safe_load((REPO / "recipes" / "speedrun_124m.yaml").read_text())
    options = recipe["model"]["init_args"]
    options["arch_overrides"].update(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=512)
    options.update(compile=False, max_steps=6)
    recipe["trainer"].update(
        accelerator="cpu",
        devices=1,
        strategy="auto",
        precision="32-true",
        max_steps=6,
        accumulate_grad_batches=1,
        val_check_interval=6,
        log_every_n_steps=1,
        limit_val_batches=2,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path / "run"),
    )
    recipe["data"]["init_args"].update(
        train_data=str(shakespeare_path),
        streaming=False,
        val_fraction=0.1,
        tokenizer=str(small_tokenizer.path),
        block_size=64,
        batch_size=4,
        num_workers=0,
        cache_dir=str(tmp_path / "cache"),
        dataset_config=None,
    )
    path = tmp_path / "speedrun_tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    main(["fit", "--config", str(path)])
    model, _ = ModelDir(tmp_path / "run" / "final").load()
    c = model.config
    assert (c.position, c.norm, c.qk_norm, c.mlp, c.tie_embeddings, c.logit_softcap) == (
        "rope",
        "rmsnorm",
        True,
        "relu2",
        False,
        15.0,
    )
    losses = [loss for _, loss in column(read_metrics(tmp_path / "run"), "train/loss")]
    assert losses and all(math.isfinite(x) for x in losses)
    assert column(read_metrics(tmp_path / "run"), "val/loss")


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "litllm.cli", "presets"], capture_output=True, text=True, check=True)
    assert "124,439,808" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "litllm.cli", "fit", "--help"], capture_output=True, text=True, check=True
    )
    assert "--model.help" in out.stdout or "--model" in out.stdout


def test_tokenizer_train_verb(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"text": "line {i} of a small corpus"}}\n' for i in range(100)))
    main(
        [
            "tokenizer",
            "train",
            "--files",
            str(corpus),
            "shakespeare",
            "--vocab_size",
            "400",
            "--out",
            str(tmp_path / "tok"),
        ]
    )
    from litllm.model.tokenizer import Tokenizer

    tok = Tokenizer.from_file(tmp_path / "tok")
    assert tok.vocab_size == 400 and tok.eot_token == "<|endoftext|>"
    assert "saved" in capsys.readouterr().out


def test_validate_verb_reports_loss_of_a_checkpoint(tmp_path):
    root, cache = tmp_path / "run", tmp_path / "cache"
    main(tiny_fit_args(root, cache, 10))
    args = tiny_fit_args(root, cache, 10)
    args[0] = "validate"
    main([*args, "--ckpt_path", str(root / "checkpoints" / "last.ckpt")])
    rows = read_metrics(root)
    assert len(column(rows, "val/loss")) >= 2  # the fit's validation and the validate run's
