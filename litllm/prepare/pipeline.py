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

This module is the orchestration: planning units, resume checks, the process pool and the
deduplication glue. Step 1 runs in ``worker``, step 3 and the manifest in ``writer``, the settings
are ``settings.PrepareSettings``, the optional scorer comes from ``quality.quality_model_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np

from litllm.corpus.format import MANIFEST, token_dtype, write_json
from litllm.corpus.readers import load_hub_dataset
from litllm.errors import DataError
from litllm.prepare.dedup import DedupConfig, exact_duplicates, near_duplicates
from litllm.prepare.filters import FilterConfig
from litllm.prepare.inputs import Unit, dataset_units, expand_inputs, input_listing, plan_units
from litllm.prepare.quality import QualityConfig, quality_model_path
from litllm.prepare.report import document_outcomes, summarize, write_report
from litllm.prepare.settings import PrepareSettings
from litllm.prepare.worker import init_worker, process_unit
from litllm.prepare.writer import plan_digest, write_manifest, write_shards

RUN_DEPENDENT = ("seconds", "cpu_seconds", "processes")
"""Report fields that change from run to run (timings, the machine's cores): in ``report.json`` only, so
that the same command on the same inputs writes the same manifest, byte for byte, interrupted or not."""


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

    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings_digest") == settings.digest() and manifest.get("units") == [u.key() for u in units]:
            if not keep_parts:  # what a run killed while cleaning up after its manifest left
                _remove_scratch(out)
            print(f"{out} is already prepared with these inputs and settings; nothing to do")
            return manifest["report"]
        raise DataError(f"{out} already holds prepared data made from other inputs or settings; choose a new output")
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    _check_same_settings(out, settings)

    quality_path = quality_model_path(settings.quality, out, text_field, on_decode_error, unit_bytes)
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

    # Stage 3: shards, then the manifest (last: its presence marks a complete directory).
    t0 = time.perf_counter()
    dtype = token_dtype(tok.vocab_size)
    shards = write_shards(out, parts, ordered, keep, dtype, shard_tokens, plan_digest(settings, ordered, keep))
    timings["shards"] = time.perf_counter() - t0
    report = finish_report(shards)
    write_manifest(
        out,
        tokenizer,
        tok,
        dtype,
        shard_tokens,
        shards,
        inputs=input_listing(units),
        units=[u.key() for u in units],
        settings=settings.as_json(),
        settings_digest=settings.digest(),
        report={k: v for k, v in report.items() if k not in RUN_DEPENDENT},
    )
    if not keep_parts:
        _remove_scratch(out)
    return report


def _remove_scratch(out: Path) -> None:
    """The per-unit parts and the resume state, once the manifest is written (it holds the settings)."""
    shutil.rmtree(out / "parts", ignore_errors=True)
    (out / "progress.json").unlink(missing_ok=True)
    (out / "settings.json").unlink(missing_ok=True)


def _check_dataset(name: str, config: str | None, split: str) -> None:
    """Open a ``datasets`` input once here, so that a wrong name or no network is one clear error, not one per worker."""
    try:
        load_hub_dataset(name, config, split, streaming=True)
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
        write_json(state, {"digest": digest, "settings": settings.as_json()})


def _run_units(units: list[Unit], processes: int, init_args: tuple, progress: bool):
    """Yield each unit's summary as it finishes: in this process for one worker, else in a spawned pool."""
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(u.size for u in units), unit="B", unit_scale=True, desc="prepare", disable=not progress)
    try:
        if processes == 1 or len(units) <= 1:
            saved = os.environ.get("TOKENIZERS_PARALLELISM")
            try:
                init_worker(*init_args)
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
            initializer=init_worker,
            initargs=init_args,
        ) as pool:
            # Largest units first, so that one big file does not run alone at the end.
            futures = {pool.submit(process_unit, u): u for u in sorted(units, key=lambda u: -u.size)}
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
