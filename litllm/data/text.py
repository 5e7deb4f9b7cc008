"""Pretraining text: documents -> token ids (end-of-text between documents) -> memory-mapped cache -> blocks.

The cache is one flat array of token ids on disk (``tokens.bin``, dtype by ``litllm.corpus.format``'s
rule) with a ``meta.json`` beside it. Its directory name hashes the data and the tokenizer, so a
second run with the same inputs reuses it and a changed file or tokenizer re-tokenizes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset
from tqdm.auto import tqdm

from litllm.corpus.format import token_dtype
from litllm.data.contract import next_token_sample
from litllm.data.shards import ShardedTokenBlocks, Span
from litllm.model.tokenizer import Tokenizer

CHUNK_CHARS = 1 << 16
"""Long documents are encoded in chunks of about this many characters (encode_batch runs them in parallel)."""

# Cut only before a line that starts with a non-space character: byte-level BPE pre-tokenization
# never joins across such a point, so chunked encoding gives exactly the tokens of whole-text encoding.
_SAFE_CUT = re.compile(r"\n(?=\S)")


def split_for_encoding(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Split ``text`` into pieces of about ``chunk_chars`` at points that do not change tokenization."""
    if len(text) <= chunk_chars:
        return [text]
    pieces, start = [], 0
    while len(text) - start > chunk_chars:
        match = _SAFE_CUT.search(text, start + chunk_chars)
        if match is None:
            break
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return pieces


def tokenize_documents(
    documents: Iterable[str], tokenizer: Tokenizer, out_path: Path, batch_chars: int = 1 << 22, desc: str = "tokenizing"
) -> dict[str, int]:
    """Encode documents, each followed by end-of-text, and append the ids to ``out_path``.

    Writes through a temporary file and renames at the end, so an interrupted run leaves no
    half-written cache behind. Returns counts: documents, tokens, bytes of text.
    """
    dtype = token_dtype(tokenizer.vocab_size)
    tmp = out_path.with_suffix(".tmp")
    counts = {"documents": 0, "tokens": 0, "bytes": 0}
    eot = np.array([tokenizer.eot_id], dtype=dtype)

    def flush(pieces: list[str], ends_doc: list[bool], f) -> None:
        for ids, end in zip(tokenizer.encode_batch(pieces), ends_doc):
            f.write(np.asarray(ids, dtype=dtype).tobytes())
            counts["tokens"] += len(ids)
            if end:
                f.write(eot.tobytes())
                counts["tokens"] += 1

    with open(tmp, "wb") as f, tqdm(desc=desc, unit="B", unit_scale=True, leave=False) as bar:
        pieces: list[str] = []
        ends_doc: list[bool] = []
        size = 0
        for doc in documents:
            counts["documents"] += 1
            n_bytes = len(doc.encode("utf-8"))
            counts["bytes"] += n_bytes
            bar.update(n_bytes)
            chunks = split_for_encoding(doc)
            pieces.extend(chunks)
            ends_doc.extend([False] * (len(chunks) - 1) + [True])
            size += len(doc)
            if size >= batch_chars:
                flush(pieces, ends_doc, f)
                pieces, ends_doc, size = [], [], 0
        if pieces:
            flush(pieces, ends_doc, f)
    os.replace(tmp, out_path)
    return counts


def build_token_cache(
    cache_dir: Path, documents: Iterable[str], tokenizer: Tokenizer, meta: dict, desc: str = "tokenizing"
) -> Path:
    """Tokenize into ``cache_dir/tokens.bin`` unless a complete cache is already there."""
    meta_path = cache_dir / "meta.json"
    if meta_path.is_file():
        return cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    counts = tokenize_documents(documents, tokenizer, cache_dir / "tokens.bin", desc=desc)
    if counts["tokens"] == 0:
        raise ValueError(f"no text found for {meta.get('source', 'the data')}")
    meta = {**meta, **counts, "dtype": token_dtype(tokenizer.vocab_size).name, "tokenizer": tokenizer.fingerprint()}
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)  # meta.json last: its presence marks a complete cache
    return cache_dir


def load_token_cache(cache_dir: Path) -> tuple[np.memmap, dict]:
    meta = json.loads((cache_dir / "meta.json").read_text())
    tokens = np.memmap(cache_dir / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r")
    return tokens, meta


class TokenBlocks(ShardedTokenBlocks):
    """Fixed-length training samples cut from the tokens ``[start, stop)`` of one flat token file.

    The one-file case of ``ShardedTokenBlocks``: sample ``i`` is ``tokens[start + i*T : start + i*T + T + 1]``
    split into input and next-token target.
    """

    def __init__(self, path: Path, dtype: str, start: int, stop: int, block_size: int) -> None:
        super().__init__([Span(Path(path), dtype, start, stop)], block_size)

    @property
    def start(self) -> int:
        """First token of the file's range (a ``TokenBlocks`` holds all the blocks of its one span)."""
        return self.spans[0].start

    @property
    def stop(self) -> int:
        """End of the file's token range."""
        return self.spans[0].stop

    @property
    def path(self) -> Path:
        """The token file."""
        return self.spans[0].path

    @property
    def tokens(self) -> np.memmap:
        """The whole token file, memory-mapped."""
        return self.shard(0)


class StreamingTokenBlocks(IterableDataset):
    """Blocks packed on the fly from a streamed ``datasets.IterableDataset`` (for corpora too big to cache).

    Split across ranks with ``split_dataset_by_node`` before it gets here; ``datasets`` splits the
    stream's shards across dataloader workers.
    """

    def __init__(self, stream, tokenizer: Tokenizer, text_field: str, block_size: int, batch_docs: int = 256) -> None:
        self.stream, self.tokenizer, self.text_field = stream, tokenizer, text_field
        self.block_size, self.batch_docs = block_size, batch_docs

    def _documents(self) -> Iterator[list[str]]:
        batch: list[str] = []
        for record in self.stream:
            batch.append(record[self.text_field])
            if len(batch) == self.batch_docs:
                yield batch
                batch = []
        if batch:
            yield batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        buffer: list[int] = []
        need = self.block_size + 1
        for docs in self._documents():
            for ids in self.tokenizer.encode_batch(docs):
                buffer.extend(ids)
                buffer.append(self.tokenizer.eot_id)
            while len(buffer) >= need:
                chunk = torch.tensor(buffer[:need], dtype=torch.long)
                del buffer[: self.block_size]  # the last target is the next block's first input
                yield next_token_sample(chunk)


def unigram_loss(train_tokens: np.ndarray, val_tokens: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/token) on validation of a model that knows only token frequencies.

    A language model that does not beat this has learned nothing about context. Add-one smoothing.
    """
    counts = np.bincount(np.asarray(train_tokens), minlength=vocab_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[np.asarray(val_tokens)].mean())
