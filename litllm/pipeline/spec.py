"""A pipeline recipe: stages, each an ordinary ``litllm`` verb with a recipe and overrides, under one root.

```yaml
out_dir: out/zero_to_chat
chat: dpo                       # the stage whose model becomes out_dir/chat
stages:
  pretrain: {run: fit, recipe: recipes/pretrain_shakespeare.yaml, set: {trainer.max_steps: 1000}}
  sft: {run: finetune full, recipe: recipes/sft_full_tiny.yaml, from: pretrain}
  evaluate: {run: evaluate, models: [pretrain, sft], prompts: recipes/zero_to_chat_prompts.json}
```

Stages run in the order written. ``from``, ``tokenizer`` and ``prepared`` name earlier stages, whose
outputs the pipeline passes on (``--model.init_from``, ``--data.tokenizer``, ``--data.prepared``), so
no path is copied by hand. A mistake names the key and the closest valid one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from litllm.errors import ConfigError

TRAINING_VERBS = ("fit", "finetune full", "finetune lora", "finetune qlora", "finetune dpo")
"""Verbs that train a model: their output is ``<stage>/final``, a model directory."""
VERBS = (*TRAINING_VERBS, "tokenizer train", "prepare", "evaluate")

STAGE_KEYS = {
    "run": "the litllm verb: " + ", ".join(VERBS),
    "recipe": "the stage's recipe (a path; relative paths are tried from the working directory, then beside "
    "the pipeline file and its parent)",
    "set": "overrides: {key: value} passed as --key value (e.g. trainer.max_steps: 100)",
    "args": "further command-line arguments, as a list of strings",
    "from": "training and evaluate: the stage whose model this one starts from",
    "tokenizer": "fit and prepare: the tokenizer stage whose tokenizer.json to use",
    "prepared": "fit: the prepare stage whose shards to train on",
    "models": "evaluate: the stages whose models to evaluate (default: every training stage before it)",
    "prompts": "evaluate: a JSON file of fixed prompts, answered greedily by each model",
    "data": "evaluate: text to score each model on (bits per byte); tokenizer train: the files to train on",
}
TOP_KEYS = {
    "out_dir": "the root of every stage's outputs",
    "chat": "the stage whose model is copied to <out_dir>/chat (default: the last training stage)",
    "stages": "name -> stage settings, in the order they run",
    "report": "report card settings: cost_per_gpu_hour, title",
}
REPORT_KEYS = {
    "cost_per_gpu_hour": "price of one GPU-hour, for the cost estimate",
    "title": "the report's title",
    "expected": "stage -> what to expect (estimates shown in their own section until measured)",
}


@dataclass
class Stage:
    """One stage of a pipeline: a verb, the recipe it runs and what it takes from earlier stages."""

    name: str
    run: str
    recipe: Path | None = None
    set: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    source: str | None = None
    """``from``: the stage whose model this one starts from (or evaluates)."""
    tokenizer: str | None = None
    prepared: str | None = None
    models: list[str] = field(default_factory=list)
    prompts: Path | None = None
    data: str | list[str] | None = None

    @property
    def trains(self) -> bool:
        """Whether the stage trains a model (its output is ``<stage>/final``)."""
        return self.run in TRAINING_VERBS

    @property
    def upstream(self) -> list[str]:
        """The earlier stages whose outputs this one reads."""
        names = [self.source, self.tokenizer, self.prepared, *self.models]
        return list(dict.fromkeys(n for n in names if n))


@dataclass
class Pipeline:
    """A parsed pipeline recipe (see the module docstring)."""

    path: Path
    out_dir: Path
    stages: list[Stage]
    chat: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"{self.path}: no stage named {name!r}{_closest(name, [s.name for s in self.stages])}")


def _closest(wrong: str, valid: list[str] | dict) -> str:
    close = difflib.get_close_matches(wrong, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(valid)})"


def _check_keys(given: dict, known: dict, where: str) -> None:
    for key in given:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{_closest(str(key), known)}")


def _resolve(path: str, pipeline_file: Path, where: str) -> Path:
    """A recipe or prompt path: as given (from the working directory), else beside the pipeline file or above it."""
    candidates = [Path(path), pipeline_file.parent / path, pipeline_file.parent.parent / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{where}: file not found: {path} (looked in the working directory and beside {pipeline_file})")


def load_pipeline(path: str | Path, out_dir: str | None = None) -> Pipeline:
    """Read and check a pipeline recipe; ``out_dir`` overrides the file's."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pipeline recipe not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with out_dir and stages")
    _check_keys(raw, TOP_KEYS, str(path))
    if not isinstance(raw.get("stages"), dict) or not raw["stages"]:
        raise ConfigError(f"{path}: 'stages' must map stage names to their settings")
    report = raw.get("report") or {}
    _check_keys(report, REPORT_KEYS, f"{path}: report")
    stages: list[Stage] = []
    for name, settings in raw["stages"].items():
        stages.append(_stage(str(name), settings or {}, path, stages))
    pipeline = Pipeline(
        path, Path(out_dir or raw.get("out_dir") or f"out/{path.stem}"), stages, raw.get("chat"), report
    )
    trained = [s.name for s in stages if s.trains]
    if pipeline.chat is None and trained:
        pipeline.chat = trained[-1]
    if pipeline.chat is not None and pipeline.chat not in trained:
        raise ConfigError(f"{path}: chat: {pipeline.chat!r} is not a training stage{_closest(pipeline.chat, trained)}")
    return pipeline


def _stage(name: str, settings: dict, pipeline_file: Path, before: list[Stage]) -> Stage:
    where = f"{pipeline_file}: stages.{name}"
    earlier = [s.name for s in before]
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected a mapping of stage settings")
    _check_keys(settings, STAGE_KEYS, where)
    run = settings.get("run")
    if run not in VERBS:
        raise ConfigError(f"{where}.run: {run!r} is not a pipeline verb{_closest(str(run), list(VERBS))}")
    stage = Stage(
        name,
        run,
        set=dict(settings.get("set") or {}),
        args=[str(a) for a in settings.get("args") or []],
        source=settings.get("from"),
        tokenizer=settings.get("tokenizer"),
        prepared=settings.get("prepared"),
        models=list(settings.get("models") or []),
        data=settings.get("data"),
    )
    if settings.get("recipe"):
        stage.recipe = _resolve(settings["recipe"], pipeline_file, f"{where}.recipe")
    elif stage.trains or run == "prepare":
        raise ConfigError(f"{where}: a {run!r} stage needs a recipe")
    if settings.get("prompts"):
        stage.prompts = _resolve(settings["prompts"], pipeline_file, f"{where}.prompts")
    for key, value in (("from", stage.source), ("tokenizer", stage.tokenizer), ("prepared", stage.prepared)):
        if value is not None and value not in earlier:
            raise ConfigError(f"{where}.{key}: {value!r} is not an earlier stage{_closest(str(value), earlier)}")
    for model in stage.models:
        if model not in earlier:
            raise ConfigError(f"{where}.models: {model!r} is not an earlier stage{_closest(model, earlier)}")
    if run.startswith("finetune") and stage.source is None and "model.init_from" not in stage.set:
        raise ConfigError(
            f"{where}: a finetuning stage needs 'from' (an earlier training stage) or set model.init_from"
        )
    if run == "evaluate" and not stage.models:
        stage.models = [s.name for s in before if s.trains]
    if run == "evaluate" and not (stage.prompts or stage.data):
        raise ConfigError(f"{where}: an evaluate stage needs 'prompts', 'data' or both")
    return stage


def apply_overrides(pipeline: Pipeline, items: list[str]) -> None:
    """``STAGE.KEY=VALUE`` items from the command line into the stages' ``set`` (VALUE read as YAML)."""
    for item in items:
        target, sep, value = item.partition("=")
        stage_name, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise ConfigError(f"--set {item!r}: expected STAGE.KEY=VALUE, e.g. pretrain.data.train_data=corpus/*.txt")
        pipeline.stage(stage_name).set[key] = yaml.safe_load(value) if value else ""
