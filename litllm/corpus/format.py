"""The prepared-corpus format: what ``litllm prepare`` writes and what training reads.

A prepared directory holds ``manifest.json`` (written last, so its presence marks a complete
directory), a copy of the tokenizer, and shards ``shard_NNNNN.bin`` of flat token ids in which every
document is followed by the end-of-text id; ``shard_NNNNN.idx`` holds each shard's document starts
(training does not need them). Token ids are stored as ``token_dtype(vocab_size)``.

The writer (``litllm.prepare.writer``) and the reader (``litllm.data.shards``) both go through this
module, so the two sides cannot disagree on names, fields or checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litllm.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "litllm-prepared"
VERSION = 1
DTYPES = ("uint16", "uint32")


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest dtype that holds every id of a ``vocab_size`` vocabulary: uint16 up to 65,536 ids."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def shard_files(index: int) -> tuple[str, str]:
    """File names of shard ``index``: its tokens (``.bin``) and its document starts (``.idx``)."""
    stem = f"shard_{index:05d}"
    return f"{stem}.bin", f"{stem}.idx"


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` through a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


@dataclass(frozen=True)
class Shard:
    """One token file of a prepared directory."""

    path: Path
    tokens: int
    documents: int


@dataclass(frozen=True)
class Manifest:
    """The checked contents of a prepared directory's ``manifest.json``."""

    root: Path
    dtype: str
    tokenizer_file: Path
    tokenizer_fingerprint: str
    vocab_size: int
    eot_id: int
    shard_tokens: int
    shards: tuple[Shard, ...]
    total_tokens: int
    total_documents: int
    raw: dict[str, Any]

    def fingerprint(self) -> str:
        """Identity of the prepared data: tokenizer, dtype and every shard's name and size.

        The informational parts of the manifest (inputs, settings, report) are left out, so
        re-running ``litllm prepare`` on the same data keeps the fingerprint.
        """
        key = {
            "dtype": self.dtype,
            "tokenizer": self.tokenizer_fingerprint,
            "shards": [[s.path.name, s.tokens, s.documents] for s in self.shards],
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def save_manifest(
    root: Path, dtype: str, tokenizer: dict[str, Any], shard_tokens: int, shards: list[dict], **extra: Any
) -> dict[str, Any]:
    """Write ``root/manifest.json`` (do it last: its presence marks a complete directory) and return it.

    Args:
        root: The prepared directory, already holding the shards and ``tokenizer["file"]``.
        dtype: Token dtype of the shards (one of ``DTYPES``).
        tokenizer: ``file`` (relative to ``root``), ``fingerprint``, ``vocab_size``, ``eot_id`` and
            optionally where it came from (``source``).
        shard_tokens: Tokens per shard (the last one may hold fewer).
        shards: ``{"file", "tokens", "documents"}`` per shard, in order.
        extra: Informational fields (inputs, settings, report) stored after the required ones.
    """
    data = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype,
        "tokenizer": tokenizer,
        "shard_tokens": shard_tokens,
        "shards": shards,
        "totals": {"tokens": sum(s["tokens"] for s in shards), "documents": sum(s["documents"] for s in shards)},
        **extra,
    }
    write_json(root / MANIFEST, data)
    return data


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` is a directory with a ``manifest.json`` (complete or not, it is meant as prepared data)."""
    return (Path(path) / MANIFEST).is_file()


def _field(data: dict, key: str, kind: type, where: Path) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DataError(f"{where}: {key!r} is missing or not a {kind.__name__} (got {value!r})")
    return value


def load_manifest(path: str | Path) -> Manifest:
    """Read and verify a prepared directory.

    Checks that ``manifest.json`` is present and of this format and version, and that every shard
    file is there with exactly ``tokens * itemsize`` bytes. Raises ``DataError`` naming the file and
    what is wrong.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"prepared directory not found: {root}")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{manifest_path} is missing: {root} is not a prepared directory, or `litllm prepare` did not finish "
            "(the manifest is written last)"
        )
    try:
        data = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{manifest_path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{manifest_path}: format is {got!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        raise DataError(
            f"{manifest_path}: version {data.get('version')!r} is not supported (this litllm reads version {VERSION}); "
            "re-run litllm prepare"
        )
    dtype = data.get("dtype")
    if dtype not in DTYPES:
        raise DataError(f"{manifest_path}: dtype {dtype!r} is not one of {DTYPES}")
    itemsize = np.dtype(dtype).itemsize
    tok = _field(data, "tokenizer", dict, manifest_path)
    tokenizer_file = root / _field(tok, "file", str, manifest_path)
    if not tokenizer_file.is_file():
        raise DataError(f"{tokenizer_file} is missing (named by {manifest_path})")
    entries = _field(data, "shards", list, manifest_path)
    if not entries:
        raise DataError(f"{manifest_path}: lists no shards")
    shards = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise DataError(f"{manifest_path}: shard entry {entry!r} is not an object")
        file = root / _field(entry, "file", str, manifest_path)
        tokens = _field(entry, "tokens", int, manifest_path)
        if not file.is_file():
            raise DataError(f"{file} is missing (listed in {manifest_path})")
        size = file.stat().st_size
        if size != tokens * itemsize:
            raise DataError(
                f"{file} has {size:,} bytes but the manifest says {tokens:,} {dtype} tokens "
                f"({tokens * itemsize:,} bytes): the file is truncated or from another run; re-run litllm prepare"
            )
        shards.append(Shard(file, tokens, int(entry.get("documents", 0))))
    totals = data.get("totals") or {}
    total_tokens = sum(s.tokens for s in shards)
    if totals.get("tokens", total_tokens) != total_tokens:
        raise DataError(
            f"{manifest_path}: totals.tokens is {totals['tokens']:,} but the shards hold {total_tokens:,} tokens"
        )
    return Manifest(
        root=root,
        dtype=dtype,
        tokenizer_file=tokenizer_file,
        tokenizer_fingerprint=str(_field(tok, "fingerprint", str, manifest_path)),
        vocab_size=_field(tok, "vocab_size", int, manifest_path),
        eot_id=_field(tok, "eot_id", int, manifest_path),
        shard_tokens=int(data.get("shard_tokens", 0)),
        shards=tuple(shards),
        total_tokens=total_tokens,
        total_documents=int(totals.get("documents", sum(s.documents for s in shards))),
        raw=data,
    )
