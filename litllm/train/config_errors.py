"""One line for a recipe or command-line mistake, instead of jsonargparse's usage dump.

LightningCLI's parser is made to raise instead of printing the whole usage (50 lines) before the one
line that matters; this module turns its message into that line, with the closest valid key when a
key is misspelt.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re

import lightning as L

from litllm.errors import ConfigError


def _accepted(class_path: str) -> list[str]:
    """The keyword arguments a class takes, including those its ``**kwargs`` pass on to its bases."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    names: list[str] = []
    for klass in inspect.getmro(cls):
        if "__init__" in vars(klass):
            names += [p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "args", "kwargs")]
    return names


def _suggest(wrong: str, valid: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(wrong, valid, n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def config_error(message: str) -> ConfigError:
    """The ``ConfigError`` for a jsonargparse error message (first the cases users meet most)."""
    section = re.search(r'Parser key "(\w+)"', message)
    option = re.search(r"class_path '([\w.]+)':\s+Option '(\w+)' is not accepted", message)
    if section and option:
        key = f"{section.group(1)}.{option.group(2)}"
        hint = _suggest(option.group(2), _accepted(option.group(1)), f"{section.group(1)}.")
        return ConfigError(f"unknown option {key}{hint}")
    value = re.search(r'Parser key "(\w+)":\s+Expected (.+?)\. Got value: (.+)', message.split("Errors:")[-1])
    if section and value:
        key = f"{section.group(1)}.{value.group(1)}"
        expected = re.sub(r"^an? ", "", re.sub(r"<class '([\w.]+)'>", r"\1", value.group(2)))
        return ConfigError(f"{key}: expected {expected}, got {value.group(3).strip()}")
    unknown = re.search(r"unrecognized arguments: (?:\w+ )?(--[\w.]+)", message)
    if unknown:
        flag = unknown.group(1)
        head, _, leaf = flag[2:].rpartition(".")
        if head == "trainer":
            valid = [p for p in inspect.signature(L.Trainer.__init__).parameters if p != "self"]
            return ConfigError(f"unknown option {flag[2:]}{_suggest(leaf, valid, 'trainer.')}")
        sections = ["trainer", "model", "data", "seed_everything", "ckpt_path", "config"]
        close = difflib.get_close_matches(head or leaf, sections, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}{'.' + leaf if head else ''}?" if close else ""
        return ConfigError(f"unknown option {flag[2:]}{hint}")
    missing = re.search(r'Parser key "config": File does not exist: (.+)', message)
    if missing:
        return ConfigError(f"recipe not found: {missing.group(1).strip()}")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return ConfigError(" ".join(lines[:2]))
