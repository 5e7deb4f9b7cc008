"""``litllm prepare`` end to end on small generated corpora: shards, dedup, report, inputs, resume."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from litllm.errors import DataError
from litllm.prepare import pipeline
from litllm.prepare.dedup import DedupConfig
from litllm.prepare.pipeline import prepare
from litllm.prepare.quality import QualityConfig

NO_DEDUP = DedupConfig(exact=False, near=False)


def write_jsonl(path: Path, docs: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"text": doc}) + "\n")
    return path


def run(inputs, out: Path, tokenizer, **kwargs) -> dict:
    kwargs.setdefault("processes", 1)
    return prepare(input=inputs, output=str(out), tokenizer=str(tokenizer.path), progress=False, **kwargs)


def shard_tokens(out: Path) -> np.ndarray:
    manifest = json.loads((out / "manifest.json").read_text())
    return np.concatenate([np.fromfile(out / s["file"], dtype=manifest["dtype"]) for s in manifest["shards"]])


def test_shards_round_trip_to_the_same_tokens_as_direct_tokenization(tmp_path, small_tokenizer, shakespeare_passages):
    docs_a, docs_b = shakespeare_passages[:40], shakespeare_passages[40:70]
    write_jsonl(tmp_path / "a.jsonl", docs_a)
    write_jsonl(tmp_path / "b.jsonl", docs_b)
    out = tmp_path / "out"
    run(str(tmp_path / "*.jsonl"), out, small_tokenizer, clean=False, dedup=NO_DEDUP, shard_tokens=5000)
    expected = np.concatenate([[*small_tokenizer.encode(d), small_tokenizer.eot_id] for d in docs_a + docs_b])
    np.testing.assert_array_equal(shard_tokens(out), expected)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["fingerprint"] == small_tokenizer.fingerprint()
    assert manifest["dtype"] == "uint16" and manifest["totals"]["documents"] == len(docs_a + docs_b)
    assert all(s["tokens"] == 5000 for s in manifest["shards"][:-1]) and len(manifest["shards"]) > 2
    # The index points at document starts: the token before each start ends a document.
    for shard in manifest["shards"]:
        tokens = np.fromfile(out / shard["file"], dtype=np.uint16)
        starts = np.fromfile(out / shard["file"].replace(".bin", ".idx"), dtype=np.uint64).astype(np.int64)
        assert len(starts) == shard["documents"]
        assert all(tokens[s - 1] == small_tokenizer.eot_id for s in starts if s > 0)
    assert (out / "tokenizer.json").is_file() and not (out / "parts").exists()


def make_dirty_corpus(tmp_path: Path, passages: list[str]) -> dict:
    """Good passages plus planted exact/near duplicates, junk and broken records; returns what was planted."""
    rng = random.Random(0)
    good = passages[:120]
    near = []
    for doc in good[:30]:
        words = doc.split()
        i = rng.randrange(len(words))
        words[i] = "forsooth"
        near.append(" ".join(words))
    junk = ["\n".join(["Home", "About us", "Products", "Contact", "Login"] * 30), "buy now " * 200]
    lines = [json.dumps({"text": d}) for d in good[:60]]
    lines += ["{this is not json", json.dumps({"body": "no text field"})]
    path_a = tmp_path / "a.jsonl"
    path_a.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(tmp_path / "b.jsonl", "wb") as f:
        for d in good[60:] + good[:10] + near + junk:  # good[:10] again: exact duplicates across files
            f.write((json.dumps({"text": d}) + "\n").encode())
        f.write(b'{"text": "' + b"a line with a broken byte \xff here and the rest of it. " * 20 + b'"}\n')
    return {"good": len(good), "exact": 10, "near": len(near), "junk": len(junk), "bad_lines": (61, 62)}


def test_duplicates_junk_and_bad_records_are_removed_and_reported(tmp_path, small_tokenizer, shakespeare_passages):
    planted = make_dirty_corpus(tmp_path, shakespeare_passages)
    out = tmp_path / "out"
    report = run(str(tmp_path / "*.jsonl"), out, small_tokenizer)
    assert report["exact_duplicates"] == planted["exact"]
    assert report["near_duplicates"] >= 0.9 * planted["near"]
    assert report["bad_records"] == 2 and report["decode_errors"] == 1
    assert any(f"a.jsonl:{planted['bad_lines'][0]}: invalid JSON" in e for e in report["bad_record_examples"])
    assert any(f"a.jsonl:{planted['bad_lines'][1]}: no field 'text'" in e for e in report["bad_record_examples"])
    dropped = report["dropped"]
    assert dropped["min_punctuation_line_fraction"] + dropped["max_duplicate_line_fraction"] >= 1  # the menu
    assert sum(dropped.values()) >= planted["junk"]
    # Nothing good is lost beyond what the filters say: every good passage is kept or explicitly dropped.
    assert (
        report["documents_out"] + sum(dropped.values()) + report["exact_duplicates"] + report["near_duplicates"]
        == report["documents_in"]
    )
    for name in ("report.json", "report.md", "length_histogram.png", "manifest.json"):
        assert (out / name).is_file(), name
    assert "dropped: exact duplicates" in (out / "report.md").read_text()


def test_two_processes_write_the_same_shards_as_one(tmp_path, small_tokenizer, shakespeare_passages):
    make_dirty_corpus(tmp_path, shakespeare_passages)
    one = run(str(tmp_path / "*.jsonl"), tmp_path / "one", small_tokenizer, shard_tokens=7000)
    two = run(str(tmp_path / "*.jsonl"), tmp_path / "two", small_tokenizer, shard_tokens=7000, processes=2)
    np.testing.assert_array_equal(shard_tokens(tmp_path / "one"), shard_tokens(tmp_path / "two"))
    assert one["dropped"] == two["dropped"] and one["documents_out"] == two["documents_out"]


def test_compressed_parquet_text_and_dataset_inputs(tmp_path, small_tokenizer, shakespeare_passages):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    docs = shakespeare_passages[:12]
    src = tmp_path / "src"
    src.mkdir()
    jsonl = "".join(json.dumps({"text": d}) + "\n" for d in docs[:3]).encode()
    (src / "a.jsonl.gz").write_bytes(gzip.compress(jsonl))
    (src / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl.replace(b"\n", b"\r\n")))
    pq.write_table(pa.table({"text": docs[3:6]}), src / "c.parquet")
    (src / "d.txt").write_text(docs[6], encoding="utf-8")
    report = run(str(src), tmp_path / "out", small_tokenizer, clean=False, dedup=NO_DEDUP)
    assert report["documents_in"] == report["documents_out"] == 10

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(saved))
    report = run(str(saved), tmp_path / "out_ds", small_tokenizer, clean=False, dedup=NO_DEDUP, processes=1)
    expected = np.concatenate([[*small_tokenizer.encode(d), small_tokenizer.eot_id] for d in docs])
    assert report["documents_out"] == len(docs)
    np.testing.assert_array_equal(shard_tokens(tmp_path / "out_ds"), expected)


def test_undecodable_records_are_skipped_by_policy(tmp_path, small_tokenizer):
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "fine text here"}\n{"text": "broken \xff byte"}\n')
    report = run(str(tmp_path / "a.jsonl"), tmp_path / "out", small_tokenizer, clean=False, on_decode_error="skip")
    assert report["decode_errors"] == 1 and report["bad_records"] == 1 and report["documents_out"] == 1
    assert "a.jsonl:2: undecodable bytes" in report["bad_record_examples"][0]


def test_empty_glob_and_nothing_left_are_clear_errors(tmp_path, small_tokenizer):
    with pytest.raises(DataError, match="no input files match"):
        run(str(tmp_path / "missing" / "*.jsonl"), tmp_path / "out", small_tokenizer)
    write_jsonl(tmp_path / "tiny.jsonl", ["too short"])
    with pytest.raises(DataError, match="none of the 1 documents survived \\(dropped by min_chars 1"):
        run(str(tmp_path / "tiny.jsonl"), tmp_path / "out2", small_tokenizer)
    assert (tmp_path / "out2" / "report.md").is_file()  # the message points at it
    with pytest.raises(DataError, match="not a dataset that can be opened"):
        run("nobody/no-such-dataset", tmp_path / "out3", small_tokenizer)


def test_interrupted_prepare_resumes_without_redoing_finished_units(
    tmp_path, small_tokenizer, shakespeare_passages, monkeypatch
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        write_jsonl(inputs / f"part{i}.jsonl", shakespeare_passages[i * 30 : (i + 1) * 30])
    real = pipeline.process_unit
    calls = []

    def crash_on_second(unit):
        calls.append(unit.source)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C while the second unit ran
        return real(unit)

    monkeypatch.setattr(pipeline, "process_unit", crash_on_second)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(str(inputs), out, small_tokenizer)
    assert not (out / "manifest.json").exists()

    calls.clear()
    monkeypatch.setattr(pipeline, "process_unit", lambda unit: calls.append(unit.source) or real(unit))
    run(str(inputs), out, small_tokenizer)
    assert sorted(Path(c).name for c in calls) == ["part1.jsonl", "part2.jsonl"]  # part0 was not redone
    monkeypatch.setattr(pipeline, "process_unit", real)
    run(str(inputs), tmp_path / "fresh", small_tokenizer)
    np.testing.assert_array_equal(shard_tokens(out), shard_tokens(tmp_path / "fresh"))


def test_finished_shards_are_not_rewritten_and_other_settings_are_refused(
    tmp_path, small_tokenizer, shakespeare_passages
):
    write_jsonl(tmp_path / "a.jsonl", shakespeare_passages[:60])
    out = tmp_path / "out"
    run(str(tmp_path / "a.jsonl"), out, small_tokenizer, shard_tokens=4000, keep_parts=True)
    expected = shard_tokens(out)
    manifest = json.loads((out / "manifest.json").read_text())
    first, last = out / manifest["shards"][0]["file"], out / manifest["shards"][-1]["file"]
    first_mtime = first.stat().st_mtime_ns
    (out / "manifest.json").unlink()  # as if the run died while writing the last shard
    last.unlink()
    run(str(tmp_path / "a.jsonl"), out, small_tokenizer, shard_tokens=4000, keep_parts=True)
    assert first.stat().st_mtime_ns == first_mtime and last.is_file()
    np.testing.assert_array_equal(shard_tokens(out), expected)

    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match="other settings"):
        run(str(tmp_path / "a.jsonl"), out, small_tokenizer, shard_tokens=4000, clean=False)


def test_quality_scorer_drops_documents_unlike_the_positives(tmp_path, small_tokenizer, shakespeare_passages):
    rng = random.Random(1)
    words = " ".join(shakespeare_passages[:50]).split()
    spam_words = ["buy", "cheap", "pills", "online", "click", "here", "free", "casino", "bonus", "win", "money"]

    def spam() -> str:
        return ". ".join(
            " ".join(rng.choice(spam_words) if rng.random() < 0.4 else rng.choice(words) for _ in range(12))
            for _ in range(25)
        )

    write_jsonl(tmp_path / "pos.jsonl", shakespeare_passages[:100])
    write_jsonl(tmp_path / "neg.jsonl", [spam() for _ in range(100)])
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "mix.jsonl", shakespeare_passages[100:140] + [spam() for _ in range(40)])
    quality = QualityConfig(positive=[str(tmp_path / "pos.jsonl")], negative=[str(tmp_path / "neg.jsonl")])
    out = tmp_path / "out"
    report = run(str(tmp_path / "in"), out, small_tokenizer, quality=quality, dedup=NO_DEDUP, clean=False)
    assert report["dropped"]["quality"] >= 36  # at least 90% of the spam
    assert report["documents_out"] >= 36  # and at most 10% of the passages
    assert (out / "quality_model.safetensors").is_file() and (out / "quality_histogram.png").is_file()
