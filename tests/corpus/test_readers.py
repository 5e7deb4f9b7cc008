"""The corpus readers: resolving sources, strict per-file readers with file:line errors, ``documents``."""

import gzip
import json

import pytest

from litllm.corpus.readers import documents, read_documents, read_json_records, resolve_files
from litllm.errors import DataError


def test_builtin_corpus_resolves(shakespeare_path):
    assert resolve_files("shakespeare") == [shakespeare_path]
    assert shakespeare_path.stat().st_size == 1_115_394


def test_glob_directory_and_missing(tmp_path):
    for name in ("b.txt", "a.jsonl", "skip.bin"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in resolve_files(str(tmp_path))] == ["a.jsonl", "b.txt"]
    assert [p.name for p in resolve_files(str(tmp_path / "*.txt"))] == ["b.txt"]
    with pytest.raises(DataError, match="no files match"):
        resolve_files(str(tmp_path / "*.parquet"))
    with pytest.raises(DataError, match="not found"):
        resolve_files(str(tmp_path / "missing.txt"))
    assert resolve_files("HuggingFaceFW/fineweb-edu") is None  # a dataset name, not a path


def test_jsonl_documents_and_errors_name_file_and_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two"}) + "\n")
    assert list(read_documents(path)) == ["one", "two"]
    path.write_text(json.dumps({"text": "ok"}) + "\n{broken\n")
    with pytest.raises(DataError, match=r"docs\.jsonl:2: invalid JSON"):
        list(read_documents(path))
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "x"}) + "\n")
    with pytest.raises(DataError, match=r"docs\.jsonl:2: record has no field 'text'"):
        list(read_documents(path))
    with pytest.raises(DataError, match=r"field 'text' is int"):
        path.write_text(json.dumps({"text": 3}) + "\n")
        list(read_documents(path))


def test_json_array_records_report_their_line(tmp_path):
    path = tmp_path / "records.json"
    path.write_text('[\n  {"text": "a"},\n  {\n    "text": "b"\n  },\n  {"other": 1}\n]\n')
    assert [line for line, _ in read_json_records(path)] == [2, 3, 6]
    with pytest.raises(DataError, match=r"records\.json:6"):
        list(read_documents(path))


def test_empty_and_non_utf8_files_are_named(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(DataError, match=r"empty\.txt: file is empty"):
        list(read_documents(empty))
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: not valid UTF-8 at byte 3"):
        list(read_documents(latin))


def test_gzip_and_parquet(tmp_path):
    gz = tmp_path / "doc.txt.gz"
    gz.write_bytes(gzip.compress(b"compressed text"))
    assert list(read_documents(gz)) == ["compressed text"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["p1", "p2"]}), tmp_path / "d.parquet")
    assert list(read_documents(tmp_path / "d.parquet", text_field="content")) == ["p1", "p2"]
    with pytest.raises(DataError, match="no column 'text'"):
        list(read_documents(tmp_path / "d.parquet"))


def test_zstd_files_are_read_and_listed(tmp_path):
    import zstandard

    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "zst doc"}\n'))
    (tmp_path / "b.txt").write_text("plain")
    assert [p.name for p in resolve_files(str(tmp_path))] == ["a.jsonl.zst", "b.txt"]
    assert list(documents(str(tmp_path))) == ["zst doc", "plain"]


def test_documents_of_a_saved_dataset_skip_empty_rows_and_name_a_missing_column(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["alpha", "", "beta"]}).save_to_disk(str(tmp_path / "ds"))
    assert list(documents(str(tmp_path / "ds"))) == ["alpha", "beta"]
    with pytest.raises(DataError, match="has no column 'body'"):
        list(documents(str(tmp_path / "ds"), text_field="body"))


def test_old_data_sources_names_still_import(tmp_path):
    from litllm.data import sources

    assert sources.resolve_files is resolve_files and sources.read_documents is read_documents
    # The data module's "plain text train_bpe can read" check must not take a compressed file for text.
    assert sources._suffix(tmp_path / "a.TXT") == ".txt"
    assert sources._suffix(tmp_path / "a.txt.gz") == ".gz" and sources._suffix(tmp_path / "a.txt.zst") == ".zst"
