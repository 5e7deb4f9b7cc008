"""Each stage as the ``litllm`` command lines it runs, where its outputs go, and a fingerprint of its inputs.

A stage is nothing but its commands: ``litllm run`` prints each one before running it, so any stage
can be run again by hand, alone, with the same result.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from litllm.model.model_dir import ModelDir
from litllm.pipeline.spec import Pipeline, Stage

HASHED_FILE_BYTES = 64 << 20
"""Local data files up to this size are fingerprinted by content, larger ones by size and time."""


def stage_dir(pipeline: Pipeline, stage: Stage) -> Path:
    return pipeline.out_dir / stage.name


def output_of(pipeline: Pipeline, stage: Stage) -> Path:
    """What a stage leaves for later ones: a model directory, a directory holding a tokenizer, or a prepared
    directory (the stage's own directory for evaluate)."""
    root = stage_dir(pipeline, stage)
    if stage.trains:
        return root / "final"
    if stage.run == "prepare":
        return root / "prepared"
    return root


def outputs_exist(pipeline: Pipeline, stage: Stage) -> bool:
    """Whether the files a finished stage leaves are all there."""
    out = output_of(pipeline, stage)
    if stage.trains:
        return ModelDir(out).weights_file.is_file() and ModelDir(out).config_file.is_file()
    if stage.run == "prepare":
        return (out / "manifest.json").is_file()
    if stage.run == "evaluate":
        return all((out / f"{model}.json").is_file() for model in stage.models)
    return ModelDir.tokenizer_path(out).is_file()


def option_value(value: Any) -> str:
    """A YAML value as a command-line value that jsonargparse reads back the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _overrides(stage: Stage) -> list[str]:
    out: list[str] = []
    for key, value in stage.set.items():
        out += [f"--{key}", option_value(value)]
    return out + stage.args


def commands(pipeline: Pipeline, stage: Stage) -> list[list[str]]:
    """The ``litllm`` argument lists (without ``litllm``) that make up ``stage``."""
    root = stage_dir(pipeline, stage)
    wired: list[str] = []
    if stage.tokenizer:
        tokenizer = str(output_of(pipeline, pipeline.stage(stage.tokenizer)))
        wired += ["--tokenizer", tokenizer] if stage.run == "prepare" else ["--data.tokenizer", tokenizer]
    if stage.prepared:
        wired += ["--data.prepared", str(output_of(pipeline, pipeline.stage(stage.prepared)))]
    if stage.run == "fit":
        return [
            ["fit", "--config", str(stage.recipe), "--trainer.default_root_dir", str(root), *wired, *_overrides(stage)]
        ]
    if stage.trains:  # finetune full|lora|qlora|dpo
        if stage.source:
            wired += ["--model.init_from", str(output_of(pipeline, pipeline.stage(stage.source)))]
        method = stage.run.split()[1]
        head = ["finetune", method, "--config", str(stage.recipe), "--trainer.default_root_dir", str(root)]
        return [[*head, *wired, *_overrides(stage)]]
    if stage.run == "tokenizer train":
        files = [stage.data] if isinstance(stage.data, str) else list(stage.data or [])
        return [["tokenizer", "train", *(["--files", *files] if files else []), "--out", str(root), *_overrides(stage)]]
    if stage.run == "prepare":
        return [
            [
                "prepare",
                "--config",
                str(stage.recipe),
                "--output",
                str(output_of(pipeline, stage)),
                *wired,
                *_overrides(stage),
            ]
        ]
    # evaluate: one command per model
    out = []
    for model in stage.models:
        command = ["evaluate", "--model_dir", str(output_of(pipeline, pipeline.stage(model)))]
        if stage.data:
            command += ["--data", stage.data if isinstance(stage.data, str) else stage.data[0]]
        if stage.prompts:
            command += ["--prompts", str(stage.prompts)]
        out.append([*command, "--output", str(root / f"{model}.json"), *_overrides(stage)])
    return out


def shell_line(command: list[str]) -> str:
    """The command as a person types it."""
    return "litllm " + shlex.join(command)


def _file_identity(path: Path) -> str:
    stat = path.stat()
    if stat.st_size <= HASHED_FILE_BYTES:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _local_files(values: list[Any]) -> dict[str, str]:
    """Content identities of the local files named among ``values`` (data, recipes, prompt files)."""
    found: dict[str, str] = {}
    for value in values:
        if not isinstance(value, (str, Path)) or len(str(value)) > 4096:
            continue
        path = Path(value)
        try:
            if path.is_file():
                found[str(path)] = _file_identity(path)
            elif path.is_dir() and not str(path).startswith(".."):
                for child in sorted(p for p in path.rglob("*") if p.is_file())[:1000]:
                    found[str(child)] = _file_identity(child)
        except OSError:
            continue
    return found


def fingerprint(pipeline: Pipeline, stage: Stage, upstream: dict[str, str]) -> str:
    """Identity of everything the stage's result depends on: its commands, the contents of its recipe,
    prompt and local data files, and the identities of the runs of the stages it reads from
    (``upstream``: stage name -> that run's identity). A stage whose fingerprint is unchanged and whose
    outputs exist is not run again."""
    values: list[Any] = [stage.recipe, stage.prompts, *stage.set.values(), *stage.args]
    values += [stage.data] if isinstance(stage.data, str) else list(stage.data or [])
    record = {
        "commands": commands(pipeline, stage),
        "files": _local_files(values),
        "upstream": {name: upstream[name] for name in stage.upstream},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
