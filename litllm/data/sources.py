"""Training's view of data sources: the corpus readers, and the key of a source's token cache.

Resolving and reading sources lives in ``litllm.corpus.readers`` (shared with ``litllm prepare``);
the names are re-exported here for the data module and older imports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from litllm.corpus.readers import (
    BUILTIN_CORPORA,
    COMPRESSED_SUFFIXES,
    JSON_SUFFIXES,
    KNOWN_SUFFIXES,
    PARQUET_SUFFIXES,
    TEXT_SUFFIXES,
    data_suffix,
    documents,
    is_saved_dataset,
    load_hub_dataset,
    read_documents,
    read_json_records,
    resolve_files,
)
from litllm.errors import DataError

__all__ = [
    "BUILTIN_CORPORA",
    "JSON_SUFFIXES",
    "KNOWN_SUFFIXES",
    "PARQUET_SUFFIXES",
    "TEXT_SUFFIXES",
    "DataError",
    "documents",
    "files_fingerprint",
    "is_saved_dataset",
    "load_hub_dataset",
    "read_documents",
    "read_json_records",
    "resolve_files",
]


def _suffix(path: Path) -> str:
    """The format suffix of an uncompressed file, else its compression suffix.

    The data module asks whether files are plain text that ``train_bpe`` can read directly; a
    compressed file must not pass for one, whatever format it holds.
    """
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSED_SUFFIXES else data_suffix(path)


def files_fingerprint(files: list[Path], extra: str = "") -> str:
    """Content hash of the files (and their names), used to key caches."""
    h = hashlib.sha256(extra.encode())
    for path in files:
        h.update(str(path.name).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]
