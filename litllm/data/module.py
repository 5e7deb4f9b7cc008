"""``LLMDataModule``: the one data module for every stage.

``mode="text"`` serves pretraining: raw text -> tokens -> fixed-length blocks. Lightning calls
``prepare_data`` once per node (tokenizer training and tokenization happen there, cached on disk)
and ``setup`` on every process (which only opens the cache). With ``prepared``, the blocks come
from the token shards of a ``litllm prepare`` directory instead, and nothing is tokenized here.

Every map-style training loader (text, prepared, sft, preference) is a ``ResumableDataLoader``: a
checkpoint records the epoch and the batches already trained, and a resumed run continues at the
exact sample where the checkpoint was written.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from litllm.corpus.readers import documents
from litllm.data import sources
from litllm.data.instruct import Report, SFTDataset, build_examples, pack, pad_collate, read_records
from litllm.data.preference import PreferenceDataset, PreferenceFields, build_pairs, preference_collate
from litllm.data.sampler import ResumableDataLoader, resumable_loader
from litllm.data.shards import Manifest, ShardedTokenBlocks, check_tokenizer, is_prepared, load_manifest, load_tokenizer
from litllm.data.text import (
    StreamingTokenBlocks,
    TokenBlocks,
    build_token_cache,
    load_token_cache,
    unigram_loss,
)
from litllm.errors import ConfigError, DataError
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Template, get_template
from litllm.model.tokenizer import EOT, Tokenizer, train_bpe

STATS_TRAIN_TOKENS = 1 << 22
"""Prepared data: the unigram baseline counts token frequencies in at most this many training tokens."""
STATS_VAL_TOKENS = 1 << 19
"""Prepared data: bytes per token and the unigram baseline use at most this many validation tokens."""


class LLMDataModule(L.LightningDataModule):
    def __init__(
        self,
        mode: Literal["text", "sft", "preference"] = "text",
        train_data: str = "shakespeare",
        prepared: str | None = None,
        val_data: str | None = None,
        val_fraction: float = 0.1,
        text_field: str = "text",
        dataset_config: str | None = None,
        dataset_split: str = "train",
        streaming: bool = False,
        val_documents: int = 1000,
        tokenizer: str | None = None,
        vocab_size: int = 8192,
        block_size: int = 256,
        batch_size: int = 16,
        num_workers: int = 0,
        cache_dir: str = ".cache/litllm",
        template: str | None = None,
        instruction_field: str = "instruction",
        input_field: str = "input",
        output_field: str = "output",
        messages_field: str = "messages",
        chosen_field: str = "chosen",
        rejected_field: str = "rejected",
        max_length: int | None = None,
        train_on_prompt: bool = False,
        packing: bool = False,
        on_bad_record: Literal["skip", "error"] = "skip",
        split_seed: int = 42,
        shuffle: bool = True,
    ) -> None:
        """
        Args:
            mode: What the data is for. ``text``: pretraining on raw text.
            train_data: A built-in corpus name (``shakespeare``), a file, directory or glob of
                .txt/.jsonl/.json/.parquet files (optionally .gz), or a ``datasets`` name (hub or local).
            prepared: (text) A directory written by ``litllm prepare`` (token shards + manifest.json) to train
                on instead of ``train_data``: nothing is tokenized, the tokenizer is the directory's own
                (or ``tokenizer``, which must be the same one).
            val_data: Validation source of the same kinds; None splits ``train_data`` instead. With
                ``prepared``: another prepared directory, or None to hold out the end of ``prepared``.
            val_fraction: Share of the token stream (its end) held out for validation when ``val_data`` is None
                (with ``prepared``: that share of its blocks).
            text_field: Field holding the text in JSON/parquet records and ``datasets`` rows.
            dataset_config: Configuration name of a ``datasets`` dataset (e.g. ``sample-10BT``).
            dataset_split: Split of a ``datasets`` dataset to read.
            streaming: Stream a ``datasets`` dataset instead of downloading and caching it
                (for corpora larger than the disk); the first ``val_documents`` documents become validation.
            val_documents: Number of streamed documents held out for validation.
            tokenizer: Path to a ``tokenizer.json`` (or a directory holding one), or a hub repository
                holding one (``openai-community/gpt2``, fetched once into the cache). None trains a
                byte-level BPE of ``vocab_size`` on the training data (cached).
            vocab_size: Vocabulary size of a tokenizer trained here.
            block_size: Tokens per training sample (at most the model's context).
            batch_size: Samples per batch on each process.
            num_workers: DataLoader worker processes.
            cache_dir: Where tokenizers and token caches are kept between runs.
            template: (sft, preference) Prompt template by name: ``alpaca`` or ``chatml``; saved with the
                finetuned model. None: the template saved beside the tokenizer (a finetuned model), else alpaca.
            instruction_field: (sft) Record field with the instruction (Alpaca style).
            input_field: (sft) Record field with the optional input (Alpaca style).
            output_field: (sft) Record field with the response (Alpaca style).
            messages_field: (sft) Record field with a list of ``{role, content}`` messages (chat style).
            chosen_field: (preference) Record field with the preferred response.
            rejected_field: (preference) Record field with the dispreferred response.
            max_length: (sft) Longest example in tokens; longer ones are truncated and counted. None: ``block_size``.
            train_on_prompt: (sft) Put the loss on the prompt tokens too, not only on the responses.
            packing: (sft) Concatenate short examples into rows of up to ``max_length`` tokens.
            on_bad_record: (sft) ``skip`` records that cannot be used (counted, first file:line reported)
                or stop with an ``error`` at the first.
            split_seed: (sft) Seed of the deterministic shuffle that picks the validation records.
            shuffle: Shuffle the training samples each epoch (the seed is ``seed_everything``'s).
        """
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        if prepared is not None and mode != "text":
            raise ConfigError(f"data.prepared holds pretraining tokens: it needs data.mode=text, not {mode}")
        self.mode = mode
        self.train_data, self.val_data, self.val_fraction = train_data, val_data, val_fraction
        self.prepared = prepared
        self.text_field, self.dataset_config, self.dataset_split = text_field, dataset_config, dataset_split
        # A prepared directory replaces the training source, streamed or not (a recipe may say streaming: true).
        self.streaming, self.val_documents = streaming and prepared is None, val_documents
        self.tokenizer_path, self.vocab_size = tokenizer, vocab_size
        self.block_size, self.batch_size, self.num_workers = block_size, batch_size, num_workers
        self.cache_dir = Path(cache_dir)
        self.template_name = template
        self.fields = PreferenceFields(
            instruction_field, input_field, output_field, messages_field, chosen_field, rejected_field
        )
        self.max_length = max_length or block_size
        self.train_on_prompt, self.packing = train_on_prompt, packing
        self.on_bad_record, self.split_seed = on_bad_record, split_seed
        self.shuffle = shuffle
        self.template: Template | None = None
        self.collate_fn = None
        self.tokenizer: Tokenizer | None = None
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.val_bytes_per_token: float | None = None
        """UTF-8 bytes per validation token: turns nats/token into bits/byte, comparable across tokenizers."""
        self.unigram_loss: float | None = None
        self.data_fingerprint: str | None = None
        self._fingerprints: dict[str, str] = {}

    # ------------------------------------------------------------------ sources
    def _fingerprint(self, source: str) -> str:
        """Identity of a data source: file contents, or dataset name + config + split."""
        if source not in self._fingerprints:
            files = sources.resolve_files(source)
            extra = f"{self.text_field}"
            if files is not None:
                self._fingerprints[source] = sources.files_fingerprint(files, extra)
            else:
                key = f"{source}|{self.dataset_config}|{self.dataset_split}|{extra}"
                self._fingerprints[source] = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self._fingerprints[source]

    def _documents(self, source: str):
        return documents(source, self.text_field, self.dataset_config, self.dataset_split)

    def _stream(self, source: str):
        return sources.load_hub_dataset(source, self.dataset_config, self.dataset_split, streaming=True)

    # ------------------------------------------------------------------ tokenizer
    def _trained_tokenizer_file(self) -> Path:
        trained = self.cache_dir / "tokenizers" / f"bpe{self.vocab_size}-{self._fingerprint(self.train_data)}"
        return ModelDir.tokenizer_path(trained)

    def _hub_tokenizer(self) -> bool:
        """A tokenizer given as a hub repository name (``openai-community/gpt2``) rather than a local path."""
        name = self.tokenizer_path
        return name is not None and not Path(name).exists() and not name.endswith(".json") and name.count("/") <= 1

    def _tokenizer_file(self) -> Path:
        if self._hub_tokenizer():
            return ModelDir(
                self.cache_dir / "tokenizers" / "hub" / self.tokenizer_path.replace("/", "--")
            ).tokenizer_file
        if self.tokenizer_path is not None:
            return ModelDir.tokenizer_path(self.tokenizer_path)
        return self._trained_tokenizer_file()

    def _ensure_tokenizer(self) -> Tokenizer:
        path = self._tokenizer_file()
        if not path.is_file() and self._hub_tokenizer():
            from tokenizers import Tokenizer as HFTokenizer

            try:
                backend = HFTokenizer.from_pretrained(self.tokenizer_path)
            except Exception as err:  # offline, unknown repository, no tokenizer.json in it
                raise FileNotFoundError(
                    f"tokenizer {self.tokenizer_path!r} is not a local file and could not be fetched from the hub ({err})"
                ) from None
            Tokenizer(backend).save(path)
        if not path.is_file():
            if self.tokenizer_path is not None:
                raise FileNotFoundError(f"tokenizer file not found: {path}")
            rank_zero_info(f"Training a byte-level BPE tokenizer (vocab {self.vocab_size}) on {self.train_data!r}")
            files = sources.resolve_files(self.train_data)
            if (
                files is not None
                and all(sources._suffix(p) in sources.TEXT_SUFFIXES for p in files)
                and not any(p.suffix == ".gz" for p in files)
            ):
                for p in files:
                    sources.read_documents(p).__next__()  # clear errors for empty / non-UTF-8 files
                tok = train_bpe(files, vocab_size=self.vocab_size, special_tokens=[EOT])
            else:
                docs = (
                    self._stream(self.train_data).take(100_000) if self.streaming else self._documents(self.train_data)
                )
                texts = (d if isinstance(d, str) else d[self.text_field] for d in docs)
                tok = train_bpe(texts=texts, vocab_size=self.vocab_size, special_tokens=[EOT])
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.json")
            tok.save(tmp)
            tmp.replace(path)
        return Tokenizer.from_file(path)

    # ------------------------------------------------------------------ caches
    def _cache_for(self, source: str, tokenizer: Tokenizer) -> Path:
        return self.cache_dir / "tokens" / f"{self._fingerprint(source)}-{tokenizer.fingerprint()}"

    def _build_cache(self, source: str, tokenizer: Tokenizer) -> Path:
        cache = self._cache_for(source, tokenizer)
        if (cache / "meta.json").is_file():
            return cache  # tokenized by an earlier run with the same data and tokenizer
        return build_token_cache(
            cache,
            self._documents(source),
            tokenizer,
            meta={"source": source, "text_field": self.text_field},
            desc=f"tokenizing {source}",
        )

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Once per node: train the tokenizer if needed and tokenize into the cache (``prepared``: check the directory)."""
        if self.prepared is not None:
            load_manifest(self.prepared)  # a bad directory fails here, before any process starts training
            if self._hub_tokenizer() and not self._tokenizer_file().is_file():
                # Fetched once per node and checked against the manifest in setup(); if it cannot be
                # fetched, setup() says so and uses the directory's own copy.
                with contextlib.suppress(FileNotFoundError):
                    self._ensure_tokenizer()
            return
        if self.mode != "text":
            if self.tokenizer_path is None:
                raise ConfigError(
                    f"data.mode={self.mode} needs the model's tokenizer: set data.tokenizer "
                    "(litllm finetune fills it in from model.checkpoint)"
                )
            self._ensure_tokenizer()
            return
        tokenizer = self._ensure_tokenizer()
        if self.streaming:
            return
        self._build_cache(self.train_data, tokenizer)
        if self.val_data is not None:
            self._build_cache(self.val_data, tokenizer)

    def setup(self, stage: str | None = None) -> None:
        """On every process: open the tokenizer and the cached (or prepared) tokens and cut them into datasets."""
        if self.train_dataset is not None:
            return
        if self.prepared is not None:
            self._setup_prepared()
            return
        if self.tokenizer is None:
            self.tokenizer = (
                Tokenizer.from_file(self._tokenizer_file())
                if self._tokenizer_file().is_file()
                else self._ensure_tokenizer()
            )
        if self.mode in ("sft", "preference"):
            self._setup_records()
            return
        if self.streaming:
            self._setup_streaming()
            return
        train_dir = self._cache_for(self.train_data, self.tokenizer)
        if not (train_dir / "meta.json").is_file():  # setup() without prepare_data(), e.g. in a notebook
            self.prepare_data()
        train_tokens, meta = load_token_cache(train_dir)
        if self.val_data is None:
            n_val = int(len(train_tokens) * self.val_fraction)
            split = len(train_tokens) - n_val
            if n_val <= self.block_size or split <= self.block_size:
                raise ValueError(
                    f"{self.train_data!r} has {len(train_tokens):,} tokens: too few for block_size={self.block_size} "
                    f"with val_fraction={self.val_fraction}"
                )
            self.train_dataset = TokenBlocks(train_dir / "tokens.bin", meta["dtype"], 0, split, self.block_size)
            self.val_dataset = TokenBlocks(
                train_dir / "tokens.bin", meta["dtype"], split, len(train_tokens), self.block_size
            )
            val_tokens = train_tokens[split:]
        else:
            val_dir = self._cache_for(self.val_data, self.tokenizer)
            val_tokens, val_meta = load_token_cache(val_dir)
            self.train_dataset = TokenBlocks(
                train_dir / "tokens.bin", meta["dtype"], 0, len(train_tokens), self.block_size
            )
            self.val_dataset = TokenBlocks(
                val_dir / "tokens.bin", val_meta["dtype"], 0, len(val_tokens), self.block_size
            )
        for name, ds in (("training", self.train_dataset), ("validation", self.val_dataset)):
            if len(ds) == 0:
                raise ValueError(f"the {name} data holds fewer than block_size+1={self.block_size + 1} tokens")
        # Only the tokens the validation blocks cover count for bits per byte.
        covered = np.asarray(val_tokens[: len(self.val_dataset) * self.block_size + 1])
        self.val_bytes_per_token = len(self.tokenizer.decode(covered[1:].tolist()).encode("utf-8")) / (len(covered) - 1)
        self.unigram_loss = unigram_loss(
            train_tokens[: len(self.train_dataset) * self.block_size], covered[1:], self.tokenizer.vocab_size
        )
        self.data_fingerprint = self._fingerprint(self.train_data)
        rank_zero_info(
            f"Data: {len(self.train_dataset):,} training and {len(self.val_dataset):,} validation blocks of "
            f"{self.block_size} tokens; unigram baseline loss {self.unigram_loss:.3f}"
        )

    def _prepared_tokenizer(self, manifest: Manifest) -> Tokenizer:
        """``data.tokenizer`` if set (it must be the one the shards were made with), else the directory's copy."""
        if self.tokenizer_path is None:
            return load_tokenizer(manifest)
        path = self._tokenizer_file()
        if not path.is_file() and self._hub_tokenizer():
            try:
                self._ensure_tokenizer()
            except FileNotFoundError as err:
                # The directory's copy is by construction the tokenizer of its tokens; only the
                # comparison with the name the recipe gives is lost.
                rank_zero_warn(
                    f"{err}; cannot compare it with {self.prepared}: training with {manifest.tokenizer_file}"
                )
                return load_tokenizer(manifest)
        return load_tokenizer(manifest, path, f"data.tokenizer ({self.tokenizer_path})")

    def _setup_prepared(self) -> None:
        """Blocks from a prepared directory: training = the first blocks, validation = the last (or val_data)."""
        manifest = load_manifest(self.prepared)
        self.tokenizer = self._prepared_tokenizer(manifest)
        total = ShardedTokenBlocks.from_manifest(manifest, self.block_size).total_blocks
        if self.val_data is None:
            n_val = int(total * self.val_fraction)
            if n_val < 1 or total - n_val < 1:
                raise DataError(
                    f"{self.prepared} holds {total:,} blocks of block_size+1={self.block_size + 1} tokens: too few "
                    f"to hold out val_fraction={self.val_fraction} for validation"
                )
            self.train_dataset = ShardedTokenBlocks.from_manifest(manifest, self.block_size, 0, total - n_val)
            self.val_dataset = ShardedTokenBlocks.from_manifest(manifest, self.block_size, total - n_val, total)
        else:
            if not is_prepared(self.val_data):
                raise ConfigError(
                    f"with data.prepared, data.val_data must be another prepared directory (no manifest.json in "
                    f"{self.val_data}); run litllm prepare on it, or leave data.val_data unset to hold out "
                    f"data.val_fraction of {self.prepared}"
                )
            val_manifest = load_manifest(self.val_data)
            check_tokenizer(val_manifest, self.tokenizer, f"the tokenizer of {self.prepared}")
            self.train_dataset = ShardedTokenBlocks.from_manifest(manifest, self.block_size)
            self.val_dataset = ShardedTokenBlocks.from_manifest(val_manifest, self.block_size)
        for name, ds in (("training", self.train_dataset), ("validation", self.val_dataset)):
            if len(ds) == 0:
                source = self.prepared if name == "training" else self.val_data
                raise DataError(f"{source}: no shard holds block_size+1={self.block_size + 1} tokens")
        # Statistics of evenly spaced blocks: exact for small data, bounded work for billions of tokens.
        train_inputs, _ = self.train_dataset.sample(STATS_TRAIN_TOKENS)
        _, val_targets = self.val_dataset.sample(STATS_VAL_TOKENS)
        texts = self.tokenizer.backend.decode_batch([t.tolist() for t in val_targets], skip_special_tokens=False)
        val_tokens = np.concatenate(val_targets)
        self.val_bytes_per_token = sum(len(t.encode("utf-8")) for t in texts) / len(val_tokens)
        vocab = max(self.tokenizer.vocab_size, manifest.vocab_size)
        self.unigram_loss = unigram_loss(train_inputs, val_tokens, vocab)
        self.data_fingerprint = manifest.fingerprint()
        rank_zero_info(
            f"Data: {self.prepared} ({manifest.total_tokens:,} tokens in {len(manifest.shards)} shards): "
            f"{len(self.train_dataset):,} training and {len(self.val_dataset):,} validation blocks of "
            f"{self.block_size} tokens; unigram baseline loss {self.unigram_loss:.3f}"
        )

    def _setup_streaming(self) -> None:
        from datasets.distributed import split_dataset_by_node

        stream = self._stream(self.train_data)
        val_stream = stream.take(self.val_documents) if self.val_data is None else self._stream(self.val_data)
        train_stream = stream.skip(self.val_documents) if self.val_data is None else stream
        if self.trainer is not None and self.trainer.world_size > 1:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            train_stream = split_dataset_by_node(train_stream, rank=rank, world_size=world)
            val_stream = split_dataset_by_node(val_stream, rank=rank, world_size=world)
        self.train_dataset = StreamingTokenBlocks(train_stream, self.tokenizer, self.text_field, self.block_size)
        self.val_dataset = StreamingTokenBlocks(val_stream, self.tokenizer, self.text_field, self.block_size)
        # Bytes per token of a sample of validation documents.
        docs = [row[self.text_field] for row in val_stream.take(min(self.val_documents, 200))]
        n_tokens = sum(len(ids) + 1 for ids in self.tokenizer.encode_batch(docs)) if docs else 0
        self.val_bytes_per_token = sum(len(d.encode("utf-8")) for d in docs) / n_tokens if n_tokens else None
        self.data_fingerprint = self._fingerprint(self.train_data)

    def _resolve_template(self) -> Template:
        if self.template_name is not None:
            return get_template(self.template_name)
        saved = ModelDir(self._tokenizer_file().parent).template()  # a finetuned model directory carries its template
        return saved or get_template("alpaca")

    def _setup_records(self) -> None:
        """SFT and preference data: read records, hold some out, encode them with the template."""
        self.template = self._resolve_template()
        missing = [t for t in self.template.special_tokens if self.tokenizer.backend.token_to_id(t) is None]
        if missing:
            # The chat markers must be single tokens; the model's embedding table grows to match.
            self.tokenizer.backend.add_special_tokens(missing)
            rank_zero_info(f"Added {missing} to the tokenizer for the {self.template.name} template")
        train_records = list(read_records(self.train_data, self.dataset_config, self.dataset_split))
        if self.val_data is None:
            order = np.random.default_rng(self.split_seed).permutation(len(train_records))
            n_val = max(1, int(len(train_records) * self.val_fraction))
            val_records = [train_records[i] for i in sorted(order[:n_val])]
            train_records = [train_records[i] for i in sorted(order[n_val:])]
        else:
            val_records = list(read_records(self.val_data, self.dataset_config, self.dataset_split))
        splits = []
        for name, records in (("training", train_records), ("validation", val_records)):
            report = Report()
            if self.mode == "sft":
                examples = build_examples(
                    iter(records),
                    self.fields,
                    self.template,
                    self.tokenizer,
                    self.max_length,
                    self.train_on_prompt,
                    self.on_bad_record,
                    report,
                )
            else:
                examples = build_pairs(
                    iter(records),
                    self.fields,
                    self.template,
                    self.tokenizer,
                    self.max_length,
                    self.on_bad_record,
                    report,
                )
            rank_zero_info(report.summary(f"{self.mode} {name} data"))
            if not examples:
                source = self.train_data if name == "training" else self.val_data
                raise DataError(f"no usable {name} records in {source}: {report.summary(name)}")
            if self.mode == "preference":
                splits.append(PreferenceDataset(examples))
            else:
                splits.append(SFTDataset(pack(examples, self.max_length) if self.packing else examples))
        self.train_dataset, self.val_dataset = splits
        collate = preference_collate if self.mode == "preference" else pad_collate
        self.collate_fn = collate(self.tokenizer.eot_id)
        self.data_fingerprint = self._fingerprint(self.train_data)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=self.shuffle and not self.streaming, drop_last=True, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def _loader(self, dataset: Dataset | None, shuffle: bool, drop_last: bool, train: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        common = dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
        )
        if isinstance(dataset, IterableDataset):  # streamed: split across ranks by the stream itself
            return DataLoader(dataset, drop_last=drop_last, **common)
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        if train:
            # Our own sampler (a DistributedSampler, so Lightning leaves it alone): shuffle=False means the
            # same order as on one process (rank r takes samples r, r + world, ...), and the loader's
            # position goes into every checkpoint.
            return resumable_loader(
                dataset,
                shuffle=shuffle,
                drop_last=drop_last,
                rank=rank,
                world_size=world,
                progress=self._trained_batches,
                **common,
            )
        sampler = None
        if world > 1:
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, drop_last=drop_last)
        return DataLoader(
            dataset, shuffle=shuffle if sampler is None else False, sampler=sampler, drop_last=drop_last, **common
        )

    def _trained_batches(self, loader: ResumableDataLoader) -> int | None:
        """Batches of the current epoch the trainer has trained on, for the loader's checkpointed state.

        The trainer's count, not the loader's: Lightning may fetch a batch ahead of training. A finished
        epoch (also one cut short by ``limit_train_batches``) reads as ``len(loader)``, so that a
        checkpoint written at an epoch end resumes at the start of the next.
        """
        trainer = self.trainer
        if trainer is None:
            return None
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return len(loader) if done >= trainer.num_training_batches else done

    # ------------------------------------------------------------------ helpers
    def bits_per_byte(self, loss_nats_per_token: float) -> float:
        """Convert a validation loss to bits per UTF-8 byte."""
        if not self.val_bytes_per_token:
            return math.nan
        return loss_nats_per_token / math.log(2) / self.val_bytes_per_token
