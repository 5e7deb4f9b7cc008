"""``LLMDataModule``: the one data module for every stage.

``mode="text"`` serves pretraining: raw text -> tokens -> fixed-length blocks, tokenized once into a
cache (or streamed, or read from the token shards of a ``litllm prepare`` directory with ``prepared``);
``mode="sft"`` and ``mode="preference"`` serve finetuning on records. Each kind of source has its
builder (``litllm.data.builders``); this module picks one, calls its ``prepare`` in Lightning's
``prepare_data`` (once per node: tokenizer training and tokenization, cached on disk) and its ``build``
in ``setup`` (on every process: only opens the cache), and serves the result.

Every map-style training loader (text, prepared, sft, preference) is a ``ResumableDataLoader``: a
checkpoint records the epoch and the batches already trained, and a resumed run continues at the
exact sample where the checkpoint was written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from litllm.data.builders import (
    Builder,
    CachedTextBuilder,
    PreferenceBuilder,
    PreparedBuilder,
    SFTBuilder,
    StreamedTextBuilder,
)
from litllm.data.contract import Collate, DataContract
from litllm.data.preference import PreferenceFields
from litllm.data.sampler import ResumableDataLoader, data_parallel_split, resumable_loader
from litllm.data.settings import RecordSettings, SourceSettings
from litllm.data.tokenizer_source import TokenizerSource
from litllm.errors import ConfigError


class LLMDataModule(L.LightningDataModule):
    """The one data module for every stage: picks the builder of its source and serves its datasets.

    After ``setup``, ``contract`` (a ``DataContract``) says what the training module may rely on: the
    tokenizer and template, the batch layout, the statistics of the validation data.
    """

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
        align_documents: bool = False,
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
            val_fraction: Share of the training text held out for validation when ``val_data`` is None: the
                end of one document's characters, or the last whole documents of several, split before
                tokenization (a tokenizer trained here never sees it). With ``prepared``: that share of its blocks.
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
            align_documents: (text, cached or prepared) Start training blocks where documents start (and every
                ``block_size`` tokens within a long one) instead of every ``block_size`` tokens of the stream,
                so a sample rarely begins mid-sentence (modded-nanogpt's end-of-text-aligned batches).
                Validation blocks are cut as before, so validation losses compare with unaligned runs.
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
        if align_documents and (mode != "text" or (streaming and prepared is None)):
            what = f"data.mode={mode}" if mode != "text" else "data.streaming=true"
            raise ConfigError(f"data.align_documents cuts cached or prepared pretraining text; not with {what}")
        self.align_documents = align_documents
        self.mode, self.prepared = mode, prepared
        self.source = SourceSettings(
            train_data,
            val_data,
            val_fraction,
            text_field,
            dataset_config,
            dataset_split,
            # A prepared directory replaces the training source, streamed or not (a recipe may say streaming: true).
            streaming=streaming and prepared is None,
            val_documents=val_documents,
        )
        self.tokenizer_source = TokenizerSource(tokenizer, vocab_size, Path(cache_dir), self.source)
        self.records = RecordSettings(
            template,
            PreferenceFields(
                instruction_field, input_field, output_field, messages_field, chosen_field, rejected_field
            ),
            max_length or block_size,
            train_on_prompt,
            packing,
            on_bad_record,
            split_seed,
        )
        self.cache_dir = Path(cache_dir)
        self.block_size, self.batch_size, self.num_workers, self.shuffle = block_size, batch_size, num_workers, shuffle
        self.builder: Builder = self._make_builder()
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.collate_fn: Collate | None = None
        self._contract: DataContract | None = None

    def _make_builder(self) -> Builder:
        """The builder of this configuration's source."""
        if self.prepared is not None:
            return PreparedBuilder(
                self.prepared,
                self.source.val_data,
                self.source.val_fraction,
                self.tokenizer_source,
                self.block_size,
                self.align_documents,
            )
        if self.mode == "sft":
            return SFTBuilder(self.source, self.tokenizer_source, self.records, self.block_size)
        if self.mode == "preference":
            return PreferenceBuilder(self.source, self.tokenizer_source, self.records, self.block_size)
        if self.source.streaming:
            return StreamedTextBuilder(self.source, self.tokenizer_source, self.block_size)
        return CachedTextBuilder(
            self.source, self.tokenizer_source, self.cache_dir, self.block_size, self.align_documents
        )

    @property
    def contract(self) -> DataContract:
        """What the training module may rely on (tokenizer, template, batch layout, statistics); after ``setup``."""
        if self._contract is None:
            raise RuntimeError("the data contract is known after setup(); call it first")
        return self._contract

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Once per node: train or fetch the tokenizer and tokenize into the cache (``prepared``: check the directory)."""
        self.builder.prepare()

    def setup(self, stage: str | None = None) -> None:
        """On every process: open the tokenizer and the cached (or prepared, streamed) data as datasets."""
        if self.train_dataset is not None:
            return
        rank, world = data_parallel_split(self.trainer)  # tensor-parallel processes share their batches
        built = self.builder.build(rank, world)
        self.train_dataset, self.val_dataset, self.collate_fn = built.train, built.val, built.collate
        self._contract = built.contract

    def train_dataloader(self) -> DataLoader:
        return self._loader(
            self.train_dataset, shuffle=self.shuffle and not self.source.streaming, drop_last=True, train=True
        )

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
        rank, world = data_parallel_split(self.trainer)
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
        """Convert a validation loss to bits per UTF-8 byte (NaN before ``setup`` or when unknown)."""
        return self._contract.bits_per_byte(loss_nats_per_token) if self._contract is not None else math.nan
