"""Stage 1 of ``litllm prepare``: one unit of input, in a worker process.

A worker reads its unit's records, normalises and filters each document, tokenizes the survivors in
batches, drops those with too few characters per token or a low quality score, and hashes the rest
for deduplication. It writes the unit's tokens (``parts/KEY.tokens``), per-document arrays
(``parts/KEY.npz``) and, last, its counts (``parts/KEY.json``: the mark that the unit is done).

``init_worker`` runs once per process (the pool's initializer); ``process_unit`` once per unit.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from litllm.corpus.format import token_dtype, write_json
from litllm.prepare.dedup import MinHasher, exact_hash
from litllm.prepare.filters import DocStats, first_failing_filter, normalize
from litllm.prepare.inputs import Unit, read_unit
from litllm.prepare.quality import QualityModel
from litllm.prepare.settings import PrepareSettings

MAX_EXAMPLES = 20
"""Bad records listed by location per unit (all are counted)."""

# This process's tokenizer, hasher, scorer and settings, built once by init_worker and read by every unit.
_WORKER: dict = {}


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``signum`` to this process when the process that started it dies, even by ``kill -9``.

    Otherwise the workers of a killed ``litllm prepare`` keep running as orphans and keep writing part
    files while a rerun starts writing the same ones (``litllm run`` asks for SIGTERM for its stages, so a
    training stage still writes its interrupted-run checkpoint).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def init_worker(settings: PrepareSettings, tokenizer_json: str, quality_path: str | None, parts: str) -> None:
    """Per process: build the tokenizer, hasher and scorer once, not per unit."""
    from tokenizers import Tokenizer as HFTokenizer

    die_with_parent()

    from litllm.model.tokenizer import Tokenizer

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # parallelism comes from processes; threads would oversubscribe
    _WORKER.update(
        settings=settings,
        tokenizer=Tokenizer(HFTokenizer.from_str(tokenizer_json)),
        hasher=MinHasher(settings.dedup.num_perm, settings.dedup.ngram, settings.dedup.seed)
        if settings.dedup.near
        else None,
        quality=QualityModel.load(quality_path) if quality_path else None,
        parts=Path(parts),
        stop_words=settings.filters.stop_word_set,
        reasons={name: i + 1 for i, name in enumerate(settings.drop_reasons())},
    )


def process_unit(unit: Unit) -> dict:
    """Read, clean, tokenize and hash one unit; write its part files; return its counts."""
    w = _WORKER
    settings: PrepareSettings = w["settings"]
    tokenizer = w["tokenizer"]
    dtype = token_dtype(tokenizer.vocab_size)
    eot = tokenizer.eot_id
    seconds = Counter()
    counts = Counter()
    bad_examples: list[str] = []
    lengths, codes, scores, doc_tokens, hashes, signatures = [], [], [], [], [], []
    key = unit.key()
    tokens_path = w["parts"] / f"{key}.tokens"
    pending: list[tuple[int, str, DocStats]] = []  # (document index, text, stats) waiting to be tokenized

    def flush(out) -> None:
        """Tokenize the pending documents in one batch and apply the post-tokenization steps."""
        t0 = time.perf_counter()
        encoded = tokenizer.encode_batch([text for _, text, _ in pending])
        seconds["tokenize"] += time.perf_counter() - t0
        for (index, text, stats), ids in zip(pending, encoded):
            counts["tokens_tokenized"] += len(ids) + 1
            t1 = time.perf_counter()
            code = 0
            min_cpt = settings.filters.min_chars_per_token
            if settings.clean and min_cpt is not None and len(text) < min_cpt * max(1, len(ids)):
                code = w["reasons"]["min_chars_per_token"]
            elif w["quality"] is not None:
                score = w["quality"].score(stats)
                scores.append(score)
                if score < settings.quality.threshold:
                    code = w["reasons"]["quality"]
            seconds["clean"] += time.perf_counter() - t1
            codes[index] = code
            if code:
                continue
            t2 = time.perf_counter()
            if settings.dedup.exact:
                hashes.append(exact_hash(text, stats.words))
            if w["hasher"] is not None:
                signatures.append(w["hasher"].signature(stats.word_hashes))
            seconds["dedup"] += time.perf_counter() - t2
            t3 = time.perf_counter()
            ids.append(eot)
            out.write(np.asarray(ids, dtype=dtype).tobytes())
            doc_tokens.append(len(ids))
            seconds["tokenize"] += time.perf_counter() - t3
        pending.clear()

    with open(tokens_path, "wb") as out:
        batch_chars = 0
        t_read = time.perf_counter()
        for record in read_unit(unit, settings.text_field, settings.on_decode_error, settings.dataset_config,
                                settings.dataset_split):  # fmt: skip
            seconds["read"] += time.perf_counter() - t_read
            counts["records"] += 1
            counts["decode_errors"] += record.decode_error
            if record.text is None:
                counts["bad_records"] += 1
                if len(bad_examples) < MAX_EXAMPLES:
                    bad_examples.append(f"{record.location}: {record.error}")
                t_read = time.perf_counter()
                continue
            t0 = time.perf_counter()
            text = normalize(record.text, settings.filters.normalization)
            counts["documents"] += 1
            counts["bytes"] += len(record.text.encode("utf-8"))
            counts["chars"] += len(text)
            lengths.append(len(text))
            stats = DocStats(text)
            reason = first_failing_filter(text, settings.filters, w["stop_words"]) if settings.clean else None
            if reason is None and not text.strip():
                reason = "empty"  # never worth a token, filters or not
            seconds["clean"] += time.perf_counter() - t0
            codes.append(w["reasons"][reason] if reason is not None else 0)
            if reason is None:
                pending.append((len(codes) - 1, text, stats))
                batch_chars += len(text)
                if batch_chars >= 1 << 20:
                    flush(out)
                    batch_chars = 0
            t_read = time.perf_counter()
        if pending:
            flush(out)
    t0 = time.perf_counter()
    arrays = {
        "lengths": np.asarray(lengths, dtype=np.uint32),
        "codes": np.asarray(codes, dtype=np.uint8),
        "scores": np.asarray(scores, dtype=np.float32),
        "doc_tokens": np.asarray(doc_tokens, dtype=np.uint32),
        "hashes": np.asarray(hashes, dtype=np.uint64),
        "signatures": np.stack(signatures) if signatures else np.zeros((0, settings.dedup.num_perm), np.uint32),
    }
    arrays_path = w["parts"] / f"{key}.npz"
    with open(arrays_path.with_suffix(".npz.tmp"), "wb") as f:  # a complete file or none
        np.savez(f, **arrays)
    arrays_path.with_suffix(".npz.tmp").replace(arrays_path)
    seconds["tokenize"] += time.perf_counter() - t0
    summary = {
        "key": key,
        "unit": asdict(unit),
        **counts,
        "kept": len(doc_tokens),
        "tokens": int(sum(doc_tokens)),
        "bad_examples": bad_examples,
        "seconds": dict(seconds),
    }
    write_json(w["parts"] / f"{key}.json", summary)  # last: marks the unit done
    return summary
