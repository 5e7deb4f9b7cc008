"""Facts for a report card, read from what runs leave on disk: no model is trained or loaded here.

A run directory (``litllm fit`` or one pipeline stage) holds ``logs/version_*/metrics.csv`` (the CSV
logger's metrics), ``run.json`` (``litllm.train.facts.RunFacts``), ``loss.png``, ``samples.txt``,
``final/`` and, in a pipeline, ``stage.json``. An evaluate stage holds one ``<model>.json`` per model.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass
class RunFacts:
    """What one run directory says about itself (every field may be missing)."""

    name: str
    path: Path
    record: dict[str, Any] = field(default_factory=dict)
    """``stage.json`` of a pipeline stage (status, commands, wall time)."""
    run: dict[str, Any] = field(default_factory=dict)
    """``run.json``: device, processes, precision, parameters, data."""
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """metric name -> (step, value) pairs, in order, over every logged version (resumed runs too)."""
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """An evaluate stage's results: model stage -> its JSON."""

    def last(self, key: str) -> float | None:
        values = self.metrics.get(key)
        return values[-1][1] if values else None

    def median(self, key: str) -> float | None:
        values = [v for _, v in self.metrics.get(key, [])]
        return statistics.median(values) if values else None

    def first(self, key: str) -> float | None:
        values = self.metrics.get(key)
        return values[0][1] if values else None

    @property
    def loss_plot(self) -> Path | None:
        path = self.path / "loss.png"
        return path if path.is_file() else None

    @property
    def last_sample(self) -> str | None:
        """The sample generated at the last validation (``samples.txt``)."""
        path = self.path / "samples.txt"
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        marker = text.rfind("--- step ")
        return text[marker:].strip() if marker >= 0 else text.strip() or None

    @property
    def steps(self) -> int | None:
        steps = [s for values in self.metrics.values() for s, _ in values]
        return max(steps) if steps else None


def read_metrics(root: Path) -> dict[str, list[tuple[int, float]]]:
    """Every numeric metric of every ``logs/version_*/metrics.csv`` under ``root``; a resumed run's versions
    are joined (a step logged twice keeps its later value)."""
    merged: dict[str, dict[int, float]] = {}
    versions = sorted((root / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))
    for path in versions:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                step = row.get("step")
                if not step:
                    continue
                for key, value in row.items():
                    if key in ("step", "epoch") or value in (None, ""):
                        continue
                    try:
                        merged.setdefault(key, {})[int(float(step))] = float(value)
                    except ValueError:
                        continue
    return {key: sorted(values.items()) for key, values in merged.items()}


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def read_run(path: Path, name: str | None = None) -> RunFacts:
    """The facts of one run or stage directory."""
    facts = RunFacts(name or path.name, path, _json(path / "stage.json"), _json(path / "run.json"), read_metrics(path))
    if facts.record.get("run") == "evaluate":
        for result in sorted(path.glob("*.json")):
            if result.name != "stage.json":
                facts.evaluations[result.stem] = _json(result)
    return facts


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """The machine and software this report was written on."""
    facts = {
        "system": f"{platform.system()} {platform.release()}",
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "python": sys.version.split()[0],
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        facts["memory"] = f"{pages * page_size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    for package in ("litllm", "torch", "lightning", "tokenizers", "peft"):
        facts[package] = _version(package)
    return facts
