"""``litllm prepare``: raw corpora -> cleaned, deduplicated, tokenized shards a training run reads directly.

The flow, and where each step runs:

1. **Units** (parallel, one worker process per core): read a file or a piece of one, normalise
   Unicode, apply the heuristic filters, tokenize what passes, drop documents with too few
   characters per token or a low quality score, and compute each survivor's exact hash and MinHash
   signature. A unit writes its tokens and per-document arrays under ``OUTPUT/parts/`` and a small
   JSON of counts last; that JSON marks the unit done, so a rerun after an interruption skips it.
2. **Deduplication** (one process, over the hashes of every unit): exact duplicates, then near
   duplicates (MinHash + LSH); the first occurrence in input order is kept.
3. **Shards** (one process, memory copies): the kept documents' tokens, in input order, cut into
   files of exactly ``shard_tokens`` tokens (the last one shorter), each with an index of document
   starts. Finished shards are recorded and not rewritten on resume.
4. **Manifest and report**: ``manifest.json`` (written last: it marks a complete directory) with
   the inputs, settings, tokenizer hash and counts; ``report.json``/``report.md`` and histograms.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np

from litllm.errors import DataError
from litllm.prepare.dedup import DedupConfig, MinHasher, exact_duplicates, exact_hash, near_duplicates
from litllm.prepare.filters import DocStats, FilterConfig, first_failing_filter, normalize
from litllm.prepare.inputs import Unit, dataset_units, expand_inputs, input_listing, plan_units, read_unit
from litllm.prepare.quality import QualityConfig, QualityModel
from litllm.prepare.report import document_outcomes, summarize, write_report

FORMAT, VERSION = "litllm-prepared", 1
MAX_EXAMPLES = 20
"""Bad records listed by location per unit (all are counted)."""


@dataclass
class PrepareSettings:
    """Everything that decides the output; a resumed run must have the same."""

    text_field: str = "text"
    dataset_config: str | None = None
    dataset_split: str = "train"
    clean: bool = True
    on_decode_error: Literal["replace", "skip"] = "replace"
    filters: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    shard_tokens: int = 1 << 26
    tokenizer_fingerprint: str = ""

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def drop_reasons(self) -> list[str]:
        """Every reason a document can be dropped, in pipeline order (index + 1 is its code in the parts)."""
        reasons = ["empty", *(self.filters.filter_names() if self.clean else [])]
        if self.clean and self.filters.min_chars_per_token is not None:
            reasons.append("min_chars_per_token")
        if self.quality.enabled:
            reasons.append("quality")
        return reasons


# ---------------------------------------------------------------------------- stage 1: units (workers)

_WORKER: dict = {}


def _init_worker(settings: PrepareSettings, tokenizer_json: str, quality_path: str | None, parts: str) -> None:
    """Per process: build the tokenizer, hasher and scorer once, not per unit."""
    from tokenizers import Tokenizer as HFTokenizer

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
    dtype = np.dtype(np.uint16) if tokenizer.vocab_size <= 1 << 16 else np.dtype(np.uint32)
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
    np.savez(w["parts"] / f"{key}.npz", **arrays)
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
    _write_json(w["parts"] / f"{key}.json", summary)  # last: marks the unit done
    return summary


# ---------------------------------------------------------------------------- the run


def prepare(
    input: str | list[str],
    output: str,
    tokenizer: str,
    text_field: str = "text",
    dataset_config: str | None = None,
    dataset_split: str = "train",
    clean: bool = True,
    filters: FilterConfig = FilterConfig(),  # noqa: B008 - read-only defaults that the CLI shows in full
    dedup: DedupConfig = DedupConfig(),  # noqa: B008
    quality: QualityConfig = QualityConfig(),  # noqa: B008
    shard_tokens: int = 1 << 26,
    processes: int = 0,
    unit_bytes: int = 64 << 20,
    on_decode_error: Literal["replace", "skip"] = "replace",
    keep_parts: bool = False,
    progress: bool = True,
) -> dict:
    """Clean, deduplicate and tokenize a corpus into token shards that ``litllm fit --data.prepared`` reads.

    Args:
        input: Files, directories or globs (text, JSONL, Parquet; ``.gz``/``.zst`` compressed), a
            built-in corpus name, or a ``datasets`` dataset (hub name or ``save_to_disk`` folder), streamed.
        output: Directory for the shards, manifest and report. An interrupted run resumes in it.
        tokenizer: A ``tokenizer.json`` or a directory holding one (e.g. a model directory).
        text_field: Field holding the document text in JSONL/Parquet records and dataset rows.
        dataset_config: Configuration name of a ``datasets`` input.
        dataset_split: Split of a ``datasets`` input.
        clean: Apply the document filters (``filters``); false keeps every non-empty document.
        filters: Thresholds of the heuristic document filters.
        dedup: Exact and near-duplicate removal across all inputs.
        quality: The optional model-based quality scorer.
        shard_tokens: Tokens per shard file (the last one is shorter).
        processes: Worker processes; 0 means one per CPU core.
        unit_bytes: Uncompressed JSONL files larger than this are split into pieces of about this size
            so that several processes share them.
        on_decode_error: Undecodable bytes in a record: ``replace`` them with U+FFFD and keep the record,
            or ``skip`` the record. Either way they are counted in the report.
        keep_parts: Keep the per-unit intermediate files after the shards are written.
        progress: Show a progress bar.

    Returns:
        The report (also written to ``output/report.json``).
    """
    from litllm.model.tokenizer import Tokenizer

    started = time.perf_counter()
    out = Path(output)
    tok = Tokenizer.from_file(tokenizer)
    settings = PrepareSettings(
        text_field=text_field,
        dataset_config=dataset_config,
        dataset_split=dataset_split,
        clean=clean,
        on_decode_error=on_decode_error,
        filters=filters,
        dedup=dedup,
        quality=quality,
        shard_tokens=shard_tokens,
        tokenizer_fingerprint=tok.fingerprint(),
    )
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens must be positive, got {shard_tokens}")
    processes = processes or os.cpu_count() or 1
    files = expand_inputs(input)
    if files is not None:
        units = plan_units(files, unit_bytes)
    else:  # a datasets dataset: one unit per process, each a slice of the stream's shards
        name = input if isinstance(input, str) else input[0]
        _check_dataset(name, dataset_config, dataset_split)
        units = dataset_units(name, processes)

    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings_digest") == settings.digest() and manifest.get("units") == [u.key() for u in units]:
            print(f"{out} is already prepared with these inputs and settings; nothing to do")
            return manifest["report"]
        raise DataError(f"{out} already holds prepared data made from other inputs or settings; choose a new output")
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    _check_same_settings(out, settings)

    quality_path = _quality_model(settings.quality, out, text_field, on_decode_error, unit_bytes)
    timings = {}

    # Stage 1: units, in parallel; finished units of an interrupted run are reused.
    t0 = time.perf_counter()
    summaries = {}
    todo = []
    for unit in units:
        done = parts / f"{unit.key()}.json"
        if done.is_file():
            summaries[unit.key()] = json.loads(done.read_text())
        else:
            todo.append(unit)
    if summaries:
        print(f"Resuming: {len(summaries)} of {len(units)} input units were finished by an earlier run")
    init_args = (settings, tok.backend.to_str(), quality_path, str(parts))
    for summary in _run_units(todo, processes, init_args, progress):
        summaries[summary["key"]] = summary
    timings["units"] = time.perf_counter() - t0
    ordered = [summaries[u.key()] for u in units]

    # Stage 2: deduplication over every unit's hashes.
    t0 = time.perf_counter()
    part_files = [parts / f"{s['key']}.npz" for s in ordered]
    keep, dup_counts = _deduplicate(part_files, settings.dedup)
    timings["dedup"] = time.perf_counter() - t0
    outcomes = document_outcomes(part_files, settings.drop_reasons(), keep)
    threshold = settings.quality.threshold if settings.quality.enabled else None

    def finish_report(shards: list[dict]) -> dict:
        report = summarize(ordered, outcomes["dropped"], dup_counts, shards)
        report["on_decode_error"] = on_decode_error
        report["processes"] = processes
        report["seconds"] = {
            "wall": round(time.perf_counter() - started, 3),
            **{k: round(v, 3) for k, v in timings.items()},
        }
        write_report(out, report, outcomes, threshold)
        return report

    if not keep.any():  # say why, with the report written, instead of writing empty shards
        report = finish_report([])
        causes = {**report["dropped"], "exact duplicates": report["exact_duplicates"]}
        causes["near duplicates"] = report["near_duplicates"]
        top = ", ".join(f"{name} {n:,}" for name, n in sorted(causes.items(), key=lambda c: -c[1]) if n)
        raise DataError(
            f"prepare: none of the {report['documents_in']:,} documents survived (dropped by {top or 'nothing'}, "
            f"bad records {report['bad_records']:,}); see {out / 'report.md'}"
        )

    # Stage 3: shards.
    t0 = time.perf_counter()
    dtype = np.dtype(np.uint16) if tok.vocab_size <= 1 << 16 else np.dtype(np.uint32)
    plan_digest = hashlib.sha256(
        (settings.digest() + "".join(s["key"] for s in ordered) + hashlib.sha256(keep.tobytes()).hexdigest()).encode()
    ).hexdigest()[:16]
    shards = _write_shards(out, parts, ordered, keep, dtype, shard_tokens, plan_digest)
    timings["shards"] = time.perf_counter() - t0

    tokenizer_file = Path(tokenizer) / "tokenizer.json" if Path(tokenizer).is_dir() else Path(tokenizer)
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    report = finish_report(shards)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype.name,
        "tokenizer": {
            "file": "tokenizer.json",
            "fingerprint": tok.fingerprint(),
            "vocab_size": tok.vocab_size,
            "eot_id": tok.eot_id,
            "source": str(tokenizer),
        },
        "shard_tokens": shard_tokens,
        "shards": shards,
        "totals": {"tokens": sum(s["tokens"] for s in shards), "documents": sum(s["documents"] for s in shards)},
        "inputs": input_listing(units),
        "units": [u.key() for u in units],
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
        "settings_digest": settings.digest(),
        "report": report,
    }
    _write_json(manifest_path, manifest)  # last: its presence marks a complete directory
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
        (out / "progress.json").unlink(missing_ok=True)
        (out / "settings.json").unlink(missing_ok=True)  # the manifest holds the settings now
    return report


def _check_dataset(name: str, config: str | None, split: str) -> None:
    """Open a ``datasets`` input once here, so that a wrong name or no network is one clear error, not one per worker."""
    from litllm.data import sources

    try:
        sources.load_hub_dataset(name, config, split, streaming=True)
    except DataError:
        raise
    except Exception as err:  # datasets raises ConnectionError, ValueError, DatasetNotFoundError, ...
        raise DataError(f"input {name!r}: not a file or glob, and not a dataset that can be opened ({err})") from None


def _check_same_settings(out: Path, settings: PrepareSettings) -> None:
    """Parts of an interrupted run are reused only if they were made with the same settings."""
    state = out / "settings.json"
    digest = settings.digest()
    if state.is_file():
        previous = json.loads(state.read_text()).get("digest")
        if previous != digest:
            raise DataError(
                f"{out} holds an unfinished prepare run with other settings (settings {previous}, now {digest}); "
                "resume it with the same settings or choose a new output directory"
            )
    else:
        _write_json(state, {"digest": digest, "settings": json.loads(json.dumps(asdict(settings), default=str))})


def _quality_model(config: QualityConfig, out: Path, text_field: str, policy: str, unit_bytes: int) -> str | None:
    """The scorer's path: the given model, or one trained here from the example files (once per output)."""
    if not config.enabled:
        return None
    if config.model is not None:
        QualityModel.load(config.model)  # fail now, not in every worker
        return config.model
    path = out / "quality_model.safetensors"
    if path.is_file():
        return str(path)
    if not config.negative:
        raise DataError("quality.positive is set but quality.negative is not: the scorer needs both")

    def documents(patterns: list[str]):
        files = expand_inputs(patterns)
        if files is None:
            raise DataError(f"quality examples must be files, got {patterns}")
        for unit in plan_units(files, unit_bytes):
            yield from (r.text for r in read_unit(unit, text_field, policy) if r.text)

    model = QualityModel.train(
        documents(config.positive), documents(config.negative), config.buckets, config.epochs, config.learning_rate
    )
    model.save(path)
    return str(path)


def _run_units(units: list[Unit], processes: int, init_args: tuple, progress: bool):
    """Yield each unit's summary as it finishes: in this process for one worker, else in a spawned pool."""
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(u.size for u in units), unit="B", unit_scale=True, desc="prepare", disable=not progress)
    try:
        if processes == 1 or len(units) <= 1:
            saved = os.environ.get("TOKENIZERS_PARALLELISM")
            try:
                _init_worker(*init_args)
                for unit in units:
                    summary = process_unit(unit)
                    bar.update(unit.size)
                    yield summary
            finally:
                if saved is None:
                    os.environ.pop("TOKENIZERS_PARALLELISM", None)
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = saved
            return
        # spawn, not fork: the parent may already hold tokenizer threads, which do not survive a fork.
        with ProcessPoolExecutor(
            max_workers=min(processes, len(units)),
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=init_args,
        ) as pool:
            # Largest units first, so that one big file does not run alone at the end.
            futures = {pool.submit(process_unit, u): u for u in sorted(units, key=lambda u: -u.size)}
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                summary = future.result()
                bar.update(futures[future].size)
                yield summary
    finally:
        bar.close()


def _deduplicate(part_files: list[Path], config: DedupConfig) -> tuple[np.ndarray, dict[str, int]]:
    """Keep-mask over all tokenized-and-kept documents (in unit order), and the duplicate counts."""
    hashes, signatures, n_docs = [], [], 0
    for path in part_files:
        with np.load(path, allow_pickle=False) as arrays:
            n = len(arrays["doc_tokens"])
            if config.exact:
                hashes.append(arrays["hashes"])
            if config.near:
                signatures.append(arrays["signatures"])
        if (config.exact and len(hashes[-1]) != n) or (config.near and len(signatures[-1]) != n):
            raise RuntimeError(f"internal: {path} holds hashes for a different number of documents")
        n_docs += n
    keep = np.ones(n_docs, dtype=bool)
    counts = {"exact_duplicate": 0, "near_duplicate": 0}
    if config.exact and n_docs:
        duplicate = exact_duplicates(np.concatenate(hashes))
        counts["exact_duplicate"] = int(duplicate.sum())
        keep &= ~duplicate
    if config.near and n_docs:
        candidates = np.flatnonzero(keep)
        near = near_duplicates(np.concatenate(signatures)[candidates], config.threshold, *config.banding())
        counts["near_duplicate"] = int(near.sum())
        keep[candidates[near]] = False
    return keep, counts


def _write_shards(
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
        name = f"shard_{index:05d}.bin"
        entry = {"file": name, "tokens": fill, "documents": len(starts)}
        done = finished.get(index)
        if done != entry or not (out / name).is_file() or (out / name).stat().st_size != fill * dtype.itemsize:
            tmp = out / f"{name}.tmp"
            buffer[:fill].tofile(tmp)
            os.replace(tmp, out / name)
            np.asarray(starts, dtype=np.uint64).tofile(out / f"shard_{index:05d}.idx")
            finished[index] = entry
            _write_json(progress_path, {"plan": plan, "shards": finished})
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


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
