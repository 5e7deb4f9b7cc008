"""The run's tokenizer: ``data.tokenizer`` (a hub repository, a tokenizer.json or a model directory), or a
byte-level BPE trained on the training data. Either way it is kept in the cache between runs.

``TokenizerSource.ensure`` makes it exist (Lightning's ``prepare_data``, once per node: fetching and
training happen there); ``TokenizerSource.open`` reads it (``setup``, on every process). Model
directory file names come from ``ModelDir``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from litllm.corpus.format import Manifest
from litllm.data import sources
from litllm.data.settings import SourceSettings
from litllm.data.shards import load_tokenizer
from litllm.model.model_dir import ModelDir
from litllm.model.tokenizer import EOT, Tokenizer, train_bpe

TRAIN_STREAM_DOCUMENTS = 100_000
"""A tokenizer trained on a streamed source sees at most this many of its first documents."""


class TokenizerSource:
    """Where the tokenizer comes from and where it is cached.

    Args:
        name: ``data.tokenizer``: a ``tokenizer.json`` path, a directory holding one, or a hub repository
            (``openai-community/gpt2``). None trains a BPE on ``source.train_data``, less its validation part.
        vocab_size: Vocabulary size of a trained BPE.
        cache_dir: ``data.cache_dir``; fetched and trained tokenizers go under ``<cache_dir>/tokenizers``.
        source: The data, for training a BPE and keying the trained tokenizer's cache.
    """

    def __init__(self, name: str | None, vocab_size: int, cache_dir: Path, source: SourceSettings) -> None:
        self.name, self.vocab_size, self.cache_dir, self.source = name, vocab_size, Path(cache_dir), source

    @property
    def is_hub(self) -> bool:
        """A tokenizer given as a hub repository name (``openai-community/gpt2``) rather than a local path."""
        name = self.name
        return name is not None and not Path(name).exists() and not name.endswith(".json") and name.count("/") <= 1

    @property
    def file(self) -> Path:
        """The tokenizer.json this run uses (it may not exist yet: see ``ensure``)."""
        if self.is_hub:
            return ModelDir(self.cache_dir / "tokenizers" / "hub" / self.name.replace("/", "--")).tokenizer_file
        if self.name is not None:
            return ModelDir.tokenizer_path(self.name)
        # A tokenizer trained on the training part of a held-out split is keyed by the split too.
        source = self.source
        key = "-".join(filter(None, [f"bpe{self.vocab_size}", source.fingerprint(source.train_data), source.split_tag]))
        return ModelDir.tokenizer_path(self.cache_dir / "tokenizers" / key)

    def ensure(self) -> Tokenizer:
        """The tokenizer, fetched from the hub or trained first if it is not on disk yet."""
        path = self.file
        if not path.is_file() and self.is_hub:
            self._fetch(path)
        if not path.is_file():
            if self.name is not None:
                raise FileNotFoundError(f"tokenizer file not found: {path}")
            self._train(path)
        return Tokenizer.from_file(path)

    def open(self) -> Tokenizer:
        """The tokenizer as ``setup`` needs it: read from disk, made first if ``prepare_data`` did not run."""
        return Tokenizer.from_file(self.file) if self.file.is_file() else self.ensure()

    def _fetch(self, path: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            backend = HFTokenizer.from_pretrained(self.name)
        except Exception as err:  # offline, unknown repository, no tokenizer.json in it
            raise FileNotFoundError(
                f"tokenizer {self.name!r} is not a local file and could not be fetched from the hub ({err})"
            ) from None
        Tokenizer(backend).save(path)

    def _train(self, path: Path) -> None:
        """Train the BPE on the training data only: never on held-out text nor streamed validation documents."""
        source = self.source
        rank_zero_info(f"Training a byte-level BPE tokenizer (vocab {self.vocab_size}) on {source.train_data!r}")
        files = sources.resolve_files(source.train_data)
        if source.holds_out:
            # The training part of the text, line by line as the trainer reads files.
            lines = (line for doc in source.training_documents() for line in doc.splitlines(keepends=True))
            tok = train_bpe(texts=lines, vocab_size=self.vocab_size, special_tokens=[EOT])
        elif (
            files is not None
            and all(sources._suffix(p) in sources.TEXT_SUFFIXES for p in files)
            and not any(p.suffix == ".gz" for p in files)
        ):
            # Plain text files (validation is val_data): the BPE trainer reads the files directly.
            for p in files:
                sources.read_documents(p).__next__()  # clear errors for empty / non-UTF-8 files
            tok = train_bpe(files, vocab_size=self.vocab_size, special_tokens=[EOT])
        else:
            if source.streaming:
                stream = source.stream(source.train_data)
                if source.val_data is None:  # the first val_documents are validation (StreamedTextBuilder)
                    stream = stream.skip(source.val_documents)
                docs = stream.take(TRAIN_STREAM_DOCUMENTS)
            else:
                docs = source.documents(source.train_data)
            texts = (d if isinstance(d, str) else d[source.text_field] for d in docs)
            tok = train_bpe(texts=texts, vocab_size=self.vocab_size, special_tokens=[EOT])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.json")
        tok.save(tmp)
        tmp.replace(path)  # renamed when complete: a run killed while saving leaves no half-written tokenizer

    # ------------------------------------------------------------------ prepared directories
    def fetch_for_prepared(self) -> None:
        """``prepare_data`` of a prepared directory: fetch a hub tokenizer once per node, if it can be.

        It is checked against the manifest in ``for_prepared``; if it cannot be fetched, that says so
        and uses the directory's own copy.
        """
        if self.is_hub and not self.file.is_file():
            with contextlib.suppress(FileNotFoundError):
                self.ensure()

    def for_prepared(self, manifest: Manifest, prepared: str) -> Tokenizer:
        """``data.tokenizer`` if set (it must be the one the shards were made with), else the directory's copy."""
        if self.name is None:
            return load_tokenizer(manifest)
        path = self.file
        if not path.is_file() and self.is_hub:
            try:
                self.ensure()
            except FileNotFoundError as err:
                # The directory's copy is by construction the tokenizer of its tokens; only the
                # comparison with the name the recipe gives is lost.
                rank_zero_warn(f"{err}; cannot compare it with {prepared}: training with {manifest.tokenizer_file}")
                return load_tokenizer(manifest)
        return load_tokenizer(manifest, path, f"data.tokenizer ({self.name})")
