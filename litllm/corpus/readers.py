"""Where text comes from: resolving a data source and reading its documents.

A source is a built-in corpus name (``shakespeare``), a file, a directory (read recursively), a glob,
or a ``datasets`` dataset (a hub name or a ``save_to_disk`` folder). Files are text (one document
each), JSON lines or a JSON array (one document per record), or Parquet (one per row), optionally
compressed with gzip or zstd. The readers here are strict: the first bad record stops with an error
naming its file and line. ``litllm prepare`` reads the same formats leniently (``litllm.prepare.inputs``)
but shares the suffix tables, the resolution of files and the decompression defined here.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litllm.errors import DataError

_CORPORA = Path(__file__).parent.parent / "data" / "corpora"
BUILTIN_CORPORA = {
    "shakespeare": _CORPORA / "tinyshakespeare.txt",
    "instructions": _CORPORA / "instruction-data.json",
    "preferences": _CORPORA / "preference-data.json",
}
"""Corpora shipped inside the package; use the key as a data source name."""

COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")
TEXT_SUFFIXES = (".txt", ".md", ".text")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
KNOWN_SUFFIXES = TEXT_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES


def data_suffix(path: Path) -> str:
    """The format suffix of ``path`` looking through a compression suffix (``a.jsonl.zst`` -> ``.jsonl``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def find_files(source: str, noun: str = "data") -> list[Path] | None:
    """The files ``source`` names: a built-in corpus, a file, a directory's data files or a glob's matches.

    None when it names none of these, or names a ``save_to_disk`` folder (a dataset, not files); the
    caller decides whether that is a dataset name or a missing file. A directory or glob without
    files is an error (``noun`` says what kind of files, in the message).
    """
    if source in BUILTIN_CORPORA:
        return [BUILTIN_CORPORA[source]]
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir() and is_saved_dataset(path):
        return None
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and data_suffix(p) in KNOWN_SUFFIXES)
        if not files:
            raise DataError(f"{path}: directory holds no {noun} files ({', '.join(KNOWN_SUFFIXES)})")
        return files
    if any(ch in source for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            # Training has always said "no files match", prepare "no input files match".
            raise DataError(f"no {'' if noun == 'data' else noun + ' '}files match {source!r}")
        return files
    return None


def resolve_files(source: str) -> list[Path] | None:
    """Local files behind ``source`` (a built-in name, file, directory or glob); None if it names none of these."""
    files = find_files(source)
    path = Path(source).expanduser()
    if files is not None or path.is_dir():
        return files
    # A path-like source that is not there is a typo, not a dataset name.
    if path.suffix.lower() in KNOWN_SUFFIXES or "/" in source and path.parent.exists():
        raise DataError(f"data file not found: {source}")
    return None


def open_binary(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading bytes, decompressed on the fly if it ends in .gz, .zst or .zstd."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix in (".zst", ".zstd"):
        import zstandard  # only for .zst inputs

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def read_text(path: Path) -> str:
    """The whole (decompressed) file as UTF-8 text; an error names the first byte that is not UTF-8."""
    with open_binary(path) as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not valid UTF-8 at byte {err.start} ({err.reason}); convert the file to UTF-8"
        ) from None


def read_documents(path: Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents in one file: a text file is one document, JSON(L)/parquet one per record."""
    suffix = data_suffix(path)
    if suffix in TEXT_SUFFIXES or suffix not in KNOWN_SUFFIXES:
        text = read_text(path)
        if not text.strip():
            raise DataError(f"{path}: file is empty")
        yield text
    elif suffix in JSON_SUFFIXES:
        yield from (_text_field(rec, text_field, path, line) for line, rec in read_json_records(path))
    else:
        yield from (t for t in parquet_column(path, text_field) if t)


def read_json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` from a JSON-lines file or a JSON array file."""
    text = read_text(path)
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


def _text_field(record: dict[str, Any], field: str, path: Path, line: int) -> str:
    if field not in record:
        raise DataError(f"{path}:{line}: record has no field {field!r} (fields: {sorted(record)})")
    value = record[field]
    if not isinstance(value, str):
        raise DataError(f"{path}:{line}: field {field!r} is {type(value).__name__}, expected a string")
    return value


def parquet_column(path: Path, column: str) -> Iterator[Any]:
    """Every value of one column of a Parquet file, in row order, read a batch at a time."""
    import pyarrow.parquet as pq  # installed with `datasets`

    table = pq.ParquetFile(path)
    if column not in table.schema_arrow.names:
        raise DataError(f"{path}: parquet file has no column {column!r} (columns: {table.schema_arrow.names})")
    for batch in table.iter_batches(columns=[column]):
        yield from batch.column(0).to_pylist()


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


def documents(
    source: str, text_field: str = "text", dataset_config: str | None = None, dataset_split: str = "train"
) -> Iterator[str]:
    """The documents of ``source``: a built-in corpus, file, directory, glob, or a ``datasets`` dataset.

    Files are read with ``read_documents``; a dataset is loaded (not streamed) and its rows'
    ``text_field`` values are the documents, empty ones left out (as in Parquet files).
    """
    files = resolve_files(source)
    if files is not None:
        for path in files:
            yield from read_documents(path, text_field)
        return
    dataset = load_hub_dataset(source, dataset_config, dataset_split, streaming=False)
    if text_field not in dataset.column_names:
        raise DataError(f"dataset {source!r} has no column {text_field!r} ({dataset.column_names})")
    for row in dataset:
        if row[text_field]:
            yield row[text_field]
