"""Module paths from before the tree showed the stages keep importing, with one deprecation line.

Recipes, saved ``config.yaml`` files and Lightning checkpoints written by litllm 0.1 name classes by
their old paths (``litllm.modules.PretrainModule``, ``litllm.callbacks.SampleGeneration``); an import
of an old path returns the module at its new path, so those files keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys

MOVED = {
    "litllm.modules": "litllm.train",
    "litllm.callbacks": "litllm.train.callbacks",
    "litllm.distributed": "litllm.train.distributed",
    "litllm.config": "litllm.model.config",
    "litllm.tokenizer": "litllm.model.tokenizer",
    "litllm.checkpoint": "litllm.model.model_dir",
    "litllm.adapters": "litllm.model.adapters",
    "litllm.generate": "litllm.infer.generate",
    "litllm.textgen": "litllm.infer.textgen",
    "litllm.chat": "litllm.infer.chat",
    "litllm.evaluate": "litllm.infer.evaluate",
    "litllm.convert": "litllm.interop.convert",
    "litllm.lm_eval_adapter": "litllm.interop.lm_eval_adapter",
    "litllm.data.templates": "litllm.model.templates",
}
"""Old module path -> new one; submodules follow (``litllm.modules.dpo`` -> ``litllm.train.dpo``)."""


def new_name(old: str) -> str | None:
    """The current path of a module known by an old one, or None if ``old`` was not moved."""
    for before, after in MOVED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before) :]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # the import system stamped the alias's spec on the real module


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves old litllm module paths to the modules at their new paths."""

    def find_spec(self, fullname, path=None, target=None):
        target_name = new_name(fullname)
        if target_name is None:
            return None
        warn_renamed(fullname, target_name)
        return importlib.util.spec_from_loader(fullname, _Alias(target_name))


def _rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


_warned: set[str] = set()


def warn_renamed(old: str, new: str) -> None:
    """One line on stderr (once per process, on rank 0) when a renamed option is used by its old name."""
    if old not in _warned and _rank_zero():
        _warned.add(old)
        print(f"litllm: {old} is now {new} (the old name still works)", file=sys.stderr)


def install() -> None:
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        # First: an old package (litllm.modules) is the new one, whose __path__ would let the ordinary
        # finder load its submodules a second time under the old names.
        sys.meta_path.insert(0, MovedModuleFinder())
