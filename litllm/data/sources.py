"""Where text comes from: local files (txt, jsonl, json, parquet, optionally gzip) or a ``datasets`` dataset.

Every reader yields documents (strings). Errors name the file, and for JSON lines the line number.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litllm.errors import DataError

BUILTIN_CORPORA = {
    "shakespeare": Path(__file__).parent / "corpora" / "tinyshakespeare.txt",
    "instructions": Path(__file__).parent / "corpora" / "instruction-data.json",
    "preferences": Path(__file__).parent / "corpora" / "preference-data.json",
}
"""Corpora shipped inside the package; use the key as a data source name."""

TEXT_SUFFIXES = (".txt", ".md", ".text")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
KNOWN_SUFFIXES = TEXT_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES


def _suffix(path: Path) -> str:
    """The data suffix, looking through a trailing .gz."""
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1].lower() if suffixes else ""


def resolve_files(source: str) -> list[Path] | None:
    """Local files behind ``source`` (a built-in name, file, directory or glob); None if it names none of these."""
    if source in BUILTIN_CORPORA:
        return [BUILTIN_CORPORA[source]]
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir() and is_saved_dataset(path):
        return None  # a `datasets` dataset written with save_to_disk: load_hub_dataset reads it
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) in KNOWN_SUFFIXES)
        if not files:
            raise DataError(f"{path}: directory holds no data files ({', '.join(KNOWN_SUFFIXES)})")
        return files
    if any(ch in source for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"no files match {source!r}")
        return files
    if path.suffix.lower() in KNOWN_SUFFIXES or "/" in source and path.parent.exists():
        raise DataError(f"data file not found: {source}")
    return None


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not valid UTF-8 at byte {err.start} ({err.reason}); convert the file to UTF-8"
        ) from None


def read_documents(path: Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents in one file: a text file is one document, JSON(L)/parquet one per record."""
    suffix = _suffix(path)
    if suffix in TEXT_SUFFIXES or suffix not in KNOWN_SUFFIXES:
        text = _open_text(path)
        if not text.strip():
            raise DataError(f"{path}: file is empty")
        yield text
    elif suffix in JSON_SUFFIXES:
        yield from (_field(rec, text_field, path, line) for line, rec in read_json_records(path))
    else:
        yield from _read_parquet(path, text_field)


def read_json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` from a JSON-lines file or a JSON array file."""
    text = _open_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
        # Map each record to the line where it starts, so errors can point at it.
        starts = _array_record_lines(text, len(records))
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{starts[i]}: record {i} is not a JSON object")
            yield starts[i], rec
        return
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{lineno}: line is not a JSON object")
        yield lineno, rec


def _array_record_lines(text: str, n: int) -> list[int]:
    """Line numbers where each top-level object of a JSON array starts."""
    decoder = json.JSONDecoder()
    lines, pos = [], text.index("[") + 1
    for _ in range(n):
        while text[pos] in " \t\r\n,":
            pos += 1
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)
    return lines


def _field(record: dict[str, Any], field: str, path: Path, line: int) -> str:
    if field not in record:
        raise DataError(f"{path}:{line}: record has no field {field!r} (fields: {sorted(record)})")
    value = record[field]
    if not isinstance(value, str):
        raise DataError(f"{path}:{line}: field {field!r} is {type(value).__name__}, expected a string")
    return value


def _read_parquet(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq  # installed with `datasets`

    table = pq.ParquetFile(path)
    if text_field not in table.schema_arrow.names:
        raise DataError(f"{path}: parquet file has no column {text_field!r} (columns: {table.schema_arrow.names})")
    for batch in table.iter_batches(columns=[text_field]):
        yield from (t for t in batch.column(0).to_pylist() if t)


def files_fingerprint(files: list[Path], extra: str = "") -> str:
    """Content hash of the files (and their names), used to key caches."""
    h = hashlib.sha256(extra.encode())
    for path in files:
        h.update(str(path.name).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def load_hub_dataset(name: str, config: str | None, split: str, streaming: bool):
    """Load a dataset by hub name, or from a local ``save_to_disk`` folder, through ``datasets``."""
    import datasets

    if Path(name).is_dir() and is_saved_dataset(Path(name)):
        dataset = datasets.load_from_disk(name)
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise DataError(f"{name}: no split {split!r} (splits: {list(dataset)})")
            dataset = dataset[split]
        return dataset.to_iterable_dataset() if streaming else dataset
    try:
        return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except FileNotFoundError as err:
        raise DataError(f"data source {name!r} is neither a local file nor a loadable dataset: {err}") from None
