"""Inputs of ``litllm prepare``: files (text, JSONL, Parquet; gzip or zstd) or a ``datasets`` dataset.

The inputs are cut into *units* of work (a file, a byte range of a large JSONL file, or a shard of a
dataset) that worker processes handle independently; a unit is also what an interrupted run does not
redo. Readers here are lenient: a bad record is reported with its file and line and skipped, so one
broken line does not stop a run over a terabyte. Finding the files, the suffix tables and
decompression are ``litllm.corpus.readers``', shared with training.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from litllm.corpus.readers import (
    COMPRESSED_SUFFIXES,
    JSON_SUFFIXES,
    PARQUET_SUFFIXES,
    data_suffix,
    find_files,
    is_saved_dataset,
    load_hub_dataset,
    open_binary,
    parquet_column,
)
from litllm.errors import DataError


@dataclass(frozen=True)
class Unit:
    """One independent piece of input."""

    kind: Literal["file", "dataset"]
    source: str
    """A file path, or a dataset name / ``save_to_disk`` folder."""
    start: int = 0
    """file: first byte; dataset: shard index."""
    stop: int = -1
    """file: end byte (-1: end of file); dataset: number of shards."""
    first_line: int = 1
    """file: line number of the byte at ``start`` (for error messages)."""
    size: int = 0
    """file: bytes of the unit (for progress); dataset: 0."""
    mtime: float = 0.0
    """file: modification time when planned; a changed file is a different unit on resume."""

    def key(self) -> str:
        """Stable identity of the unit's work, used to name its outputs and to resume."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Record:
    """A document, or the reason a record could not give one."""

    location: str
    text: str | None
    error: str | None = None
    decode_error: bool = False
    """The record had undecodable bytes (replaced, or the record was skipped, by policy)."""


def expand_inputs(inputs: str | list[str]) -> list[Path] | None:
    """The files behind the input patterns, sorted and de-duplicated; None if the input is a dataset name.

    A pattern that matches nothing is an error: an empty input would silently prepare nothing.
    """
    patterns = [inputs] if isinstance(inputs, str) else list(inputs)
    if not patterns:
        raise DataError("prepare: no input given")
    files: list[Path] = []
    for pattern in patterns:
        found = find_files(pattern, noun="input")
        if found is not None:
            files.extend(found)
            continue
        path = Path(pattern).expanduser()
        if path.is_dir() and is_saved_dataset(path):
            return None
        if len(patterns) == 1 and not path.suffix and pattern.count("/") <= 1 and not path.parent.is_dir():
            return None  # a hub dataset name such as HuggingFaceFW/fineweb-edu
        raise DataError(f"input not found: {pattern}")
    return sorted(set(files))


def plan_units(files: list[Path], unit_bytes: int) -> list[Unit]:
    """Cut the files into units: uncompressed JSONL files larger than ``unit_bytes`` into byte ranges
    that end at line ends (so several processes share one big file), every other file whole."""
    units = []
    for path in files:
        stat = path.stat()
        compressed = path.suffix.lower() in COMPRESSED_SUFFIXES
        if data_suffix(path) in JSON_SUFFIXES and not compressed and stat.st_size > unit_bytes:
            for start, stop, line in _line_ranges(path, unit_bytes):
                units.append(Unit("file", str(path), start, stop, line, stop - start, stat.st_mtime))
        else:
            units.append(Unit("file", str(path), 0, -1, 1, stat.st_size, stat.st_mtime))
    return units


def _line_ranges(path: Path, unit_bytes: int) -> list[tuple[int, int, int]]:
    """Byte ranges of about ``unit_bytes`` ending at newlines, with the line number each starts at."""
    ranges, start, line = [], 0, 1
    size = path.stat().st_size
    with open(path, "rb") as f:
        while start < size:
            f.seek(min(start + unit_bytes, size))
            f.readline()  # run on to the end of the line
            stop = min(f.tell(), size)
            f.seek(start)
            remaining, newlines = stop - start, 0
            while remaining:
                block = f.read(min(remaining, 1 << 24))
                newlines += block.count(b"\n")
                remaining -= len(block)
            ranges.append((start, stop, line))
            start, line = stop, line + newlines
    return ranges


def dataset_units(name: str, shards: int) -> list[Unit]:
    return [Unit("dataset", name, i, shards) for i in range(shards)]


def _decode(raw: bytes, policy: str) -> tuple[str | None, bool]:
    """(text, had_errors): undecodable bytes become U+FFFD (policy ``replace``) or the text is dropped (``skip``)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        if policy == "skip":
            return None, True
        return raw.decode("utf-8", errors="replace"), True


def read_unit(
    unit: Unit, text_field: str, on_decode_error: str, dataset_config: str | None = None, split: str = "train"
) -> Iterator[Record]:
    """Yield every record of one unit, good or bad, in order."""
    if unit.kind == "dataset":
        yield from _read_dataset(unit, text_field, dataset_config, split)
        return
    path = Path(unit.source)
    suffix = data_suffix(path)
    if suffix in JSON_SUFFIXES:
        yield from _read_jsonl(path, unit, text_field, on_decode_error)
    elif suffix in PARQUET_SUFFIXES:
        yield from _read_parquet(path, text_field)
    else:  # a text file is one document
        with open_binary(path) as f:
            text, bad = _decode(f.read(), on_decode_error)
        if text is None:
            yield Record(str(path), None, "undecodable bytes (skipped by policy)", decode_error=True)
        else:
            yield Record(str(path), text, decode_error=bad)


def _read_jsonl(path: Path, unit: Unit, text_field: str, on_decode_error: str) -> Iterator[Record]:
    with open_binary(path) as f:
        if unit.start:
            f.seek(unit.start)
        position, lineno = unit.start, unit.first_line
        first = True
        for raw in f:
            if unit.stop >= 0 and position >= unit.stop:
                break
            position += len(raw)
            location = f"{path}:{lineno}"
            lineno += 1
            if first and raw.lstrip().startswith(b"["):
                yield Record(location, None, "a JSON array file: prepare reads JSON lines, one object per line")
                return
            first = False
            if not raw.strip():
                continue
            line, bad = _decode(raw, on_decode_error)
            if line is None:
                yield Record(location, None, "undecodable bytes (skipped by policy)", decode_error=True)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield Record(location, None, f"invalid JSON ({err.msg})", decode_error=bad)
                continue
            if not isinstance(record, dict):
                yield Record(location, None, "not a JSON object", decode_error=bad)
            elif not isinstance(record.get(text_field), str):
                what = (
                    "no field"
                    if text_field not in record
                    else f"a non-string field ({type(record[text_field]).__name__})"
                )
                yield Record(location, None, f"{what} {text_field!r}", decode_error=bad)
            else:
                yield Record(location, record[text_field], decode_error=bad)


def _read_parquet(path: Path, text_field: str) -> Iterator[Record]:
    for row, value in enumerate(parquet_column(path, text_field), start=1):
        if isinstance(value, str):
            yield Record(f"{path}:row {row}", value)
        else:
            yield Record(f"{path}:row {row}", None, f"{text_field!r} is {type(value).__name__}, not a string")


def _read_dataset(unit: Unit, text_field: str, config: str | None, split: str) -> Iterator[Record]:
    from datasets.distributed import split_dataset_by_node

    stream = load_hub_dataset(unit.source, config, split, streaming=True)
    stream = split_dataset_by_node(stream, rank=unit.start, world_size=unit.stop)
    for row, record in enumerate(stream, start=1):
        value = record.get(text_field)
        location = f"{unit.source}[shard {unit.start}/{unit.stop}]:row {row}"
        if isinstance(value, str):
            yield Record(location, value)
        else:
            yield Record(location, None, f"no string field {text_field!r}")


def input_listing(units: list[Unit]) -> list[dict]:
    """The inputs for the manifest: each file once with its size, or the dataset."""
    seen: dict[str, dict] = {}
    for unit in units:
        if unit.source not in seen:
            entry = {"source": unit.source, "kind": unit.kind}
            if unit.kind == "file":
                entry["bytes"] = os.path.getsize(unit.source)
            seen[unit.source] = entry
    return list(seen.values())
