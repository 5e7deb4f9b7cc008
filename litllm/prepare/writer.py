"""Stage 3 of ``litllm prepare``: the kept documents' tokens into shards, and the manifest.

Shards and manifest are written in the format of ``litllm.corpus.format``. Each finished shard is
recorded in ``progress.json`` under the digest of the plan (settings, units, keep mask), so a resumed
run with the same plan does not rewrite it; the manifest is written last and marks the directory done.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from litllm.corpus.format import save_manifest, shard_files, write_json
from litllm.errors import DataError
from litllm.model.model_dir import ModelDir
from litllm.prepare.settings import PrepareSettings

if TYPE_CHECKING:
    from litllm.model.tokenizer import Tokenizer


def plan_digest(settings: PrepareSettings, summaries: list[dict], keep: np.ndarray) -> str:
    """Identity of what the shards will hold: the settings, the units in order and which documents survive."""
    text = settings.digest() + "".join(s["key"] for s in summaries) + hashlib.sha256(keep.tobytes()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_shards(
    out: Path,
    parts: Path,
    summaries: list[dict],
    keep: np.ndarray | None,
    dtype: np.dtype,
    shard_tokens: int,
    plan: str,
) -> list[dict]:
    """Copy the kept documents' tokens into fixed-size shards; skip shards an earlier run finished."""
    progress_path = out / "progress.json"
    finished: dict[int, dict] = {}
    if progress_path.is_file():
        state = json.loads(progress_path.read_text())
        if state.get("plan") == plan:
            finished = {int(k): v for k, v in state["shards"].items()}
    shards: list[dict] = []
    buffer = np.empty(shard_tokens, dtype=dtype)
    fill, starts = 0, []

    def close_shard() -> None:
        nonlocal fill, starts
        index = len(shards)
        name, index_name = shard_files(index)
        entry = {"file": name, "tokens": fill, "documents": len(starts)}
        done = finished.get(index)
        if done != entry or not (out / name).is_file() or (out / name).stat().st_size != fill * dtype.itemsize:
            tmp = out / f"{name}.tmp"
            buffer[:fill].tofile(tmp)
            os.replace(tmp, out / name)
            np.asarray(starts, dtype=np.uint64).tofile(out / index_name)
            finished[index] = entry
            write_json(progress_path, {"plan": plan, "shards": finished})
        shards.append(entry)
        fill, starts = 0, []

    position = 0  # index of the next document in the keep mask
    for summary in summaries:
        n_docs = summary["kept"]
        if n_docs == 0:
            continue
        with np.load(parts / f"{summary['key']}.npz", allow_pickle=False) as arrays:
            lengths = arrays["doc_tokens"].astype(np.int64)
        tokens = np.memmap(parts / f"{summary['key']}.tokens", dtype=dtype, mode="r")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept = np.flatnonzero(keep[position : position + n_docs])
        position += n_docs
        for i in kept.tolist():
            doc = tokens[offsets[i] : offsets[i + 1]]
            starts.append(fill)
            while len(doc):
                take = min(len(doc), shard_tokens - fill)
                buffer[fill : fill + take] = doc[:take]
                fill += take
                doc = doc[take:]
                if fill == shard_tokens:
                    close_shard()
        del tokens
    if fill:
        close_shard()
    if not shards:
        raise DataError("prepare: no document survived cleaning and deduplication; see the report for the reasons")
    return shards


def write_manifest(
    out: Path,
    tokenizer_path: str,
    tokenizer: Tokenizer,
    dtype: np.dtype,
    shard_tokens: int,
    shards: list[dict],
    **extra,
) -> dict:
    """Copy the tokenizer into ``out`` and write the manifest (last: it marks a complete directory).

    ``tokenizer`` is the one loaded from ``tokenizer_path`` (a ``tokenizer.json`` or a directory holding
    one); ``extra`` goes into the manifest as it is.
    """
    # Under a model directory's name for it, so that a prepared directory also serves as data.tokenizer.
    copy = ModelDir(out).tokenizer_file
    shutil.copyfile(ModelDir.tokenizer_path(tokenizer_path), copy)
    entry = {
        "file": copy.name,
        "fingerprint": tokenizer.fingerprint(),
        "vocab_size": tokenizer.vocab_size,
        "eot_id": tokenizer.eot_id,
        "source": str(tokenizer_path),
    }
    return save_manifest(out, dtype.name, entry, shard_tokens, shards, **extra)
