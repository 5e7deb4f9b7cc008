"""Training from a prepared directory: the token shards ``litllm prepare`` writes.

A prepared directory holds ``manifest.json`` (written last, so its presence marks a complete
directory), a copy of the tokenizer, and shards ``shard_NNNNN.bin`` of flat token ids in which every
document is followed by the end-of-text id (``shard_NNNNN.idx`` holds document offsets; training does
not need them). ``load_manifest`` checks the directory before any training starts, and
``ShardedTokenBlocks`` serves fixed-length blocks cut inside each shard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from litllm.errors import DataError
from litllm.model.tokenizer import Tokenizer

MANIFEST = "manifest.json"
FORMAT = "litllm-prepared"
VERSION = 1
DTYPES = ("uint16", "uint32")


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


def check_tokenizer(manifest: Manifest, tokenizer: Tokenizer, name: str = "data.tokenizer") -> None:
    """Refuse a tokenizer other than the one the shards were made with (token ids would mean other text).

    ``name`` says where the tokenizer came from, for the message.
    """
    fingerprint = tokenizer.fingerprint()
    if fingerprint != manifest.tokenizer_fingerprint:
        raise DataError(
            f"{manifest.root} was tokenized with tokenizer {manifest.tokenizer_fingerprint} but {name} is "
            f"{fingerprint}; re-run litllm prepare or point data.tokenizer at {manifest.tokenizer_file}"
        )


def load_tokenizer(manifest: Manifest, path: str | Path | None = None, name: str = "data.tokenizer") -> Tokenizer:
    """The tokenizer to train with: ``path`` (checked against the manifest) or the directory's own copy.

    Its end-of-text id is the manifest's, whatever token the tokenizer would guess on its own.
    """
    if path is None:
        path, name = manifest.tokenizer_file, str(manifest.tokenizer_file)
    tokenizer = Tokenizer.from_file(path)
    check_tokenizer(manifest, tokenizer, name)
    if tokenizer.eot_id != manifest.eot_id:
        token = tokenizer.backend.id_to_token(manifest.eot_id)
        if token is None:
            raise DataError(f"{manifest.root}: eot_id {manifest.eot_id} is not a token of {path}")
        tokenizer = Tokenizer(tokenizer.backend, eot_token=token)
    return tokenizer


class ShardedTokenBlocks(Dataset):
    """Fixed-length samples cut from the shards of a prepared directory.

    Within each shard, block ``i`` is ``tokens[i*T : i*T + T + 1]`` split into input and next-token
    target (as in ``TokenBlocks``); blocks never cross shard files, so a shard's last partial block
    is left out. Blocks are numbered globally over all shards in order, and the dataset holds the
    blocks ``[start, stop)`` of that numbering, so training and validation can be cut from one
    directory. Shards are opened lazily with ``np.memmap`` (the dataset pickles cheaply to workers).
    """

    def __init__(
        self,
        files: list[Path],
        tokens: list[int],
        dtype: str,
        block_size: int,
        start: int = 0,
        stop: int | None = None,
    ) -> None:
        if len(files) != len(tokens):
            raise ValueError("one token count per shard file")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.files = [Path(f) for f in files]
        self.dtype, self.block_size = dtype, block_size
        per_shard = np.array([max(0, (n - 1) // block_size) for n in tokens], dtype=np.int64)
        # first[k] = global number of shard k's first block; first[-1] = blocks in all shards
        self.first = np.concatenate([[0], np.cumsum(per_shard)])
        total = int(self.first[-1])
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ValueError(f"block range [{start}, {stop}) is outside the {total} blocks of the shards")
        self.start, self.stop = start, stop
        self._shards: dict[int, np.memmap] = {}

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, block_size: int, start: int = 0, stop: int | None = None
    ) -> ShardedTokenBlocks:
        """The blocks ``[start, stop)`` of a verified prepared directory (all of them by default)."""
        return cls(
            [s.path for s in manifest.shards],
            [s.tokens for s in manifest.shards],
            manifest.dtype,
            block_size,
            start,
            stop,
        )

    @property
    def total_blocks(self) -> int:
        """Blocks in all shards, whatever this dataset's range."""
        return int(self.first[-1])

    def __len__(self) -> int:
        return self.stop - self.start

    def locate(self, i: int) -> tuple[int, int]:
        """Shard number and token offset of sample ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        g = self.start + i
        shard = int(np.searchsorted(self.first, g, side="right")) - 1
        return shard, (g - int(self.first[shard])) * self.block_size

    def shard(self, k: int) -> np.memmap:
        if k not in self._shards:
            self._shards[k] = np.memmap(self.files[k], dtype=np.dtype(self.dtype), mode="r")
        return self._shards[k]

    def tokens(self, i: int) -> np.ndarray:
        """The ``block_size + 1`` token ids of sample ``i``."""
        k, lo = self.locate(i)
        return self.shard(k)[lo : lo + self.block_size + 1]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        chunk = torch.from_numpy(self.tokens(i).astype(np.int64))
        return {"input_ids": chunk[:-1], "labels": chunk[1:]}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_shards": {}}

    def sample(self, max_tokens: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Evenly spaced blocks covering at most ``max_tokens`` tokens (all blocks if they fit).

        Returns their inputs concatenated (``block_size`` tokens per block) and the list of their
        targets: statistics over a large directory without reading all of it.
        """
        n = len(self)
        count = min(n, max(1, max_tokens // self.block_size))
        picks = np.unique(np.linspace(0, n - 1, count).round().astype(np.int64)) if n else []
        blocks = [np.asarray(self.tokens(int(i))) for i in picks]
        inputs = np.concatenate([b[:-1] for b in blocks]) if blocks else np.zeros(0, np.int64)
        return inputs, [b[1:] for b in blocks]
