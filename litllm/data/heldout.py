"""The held-out split of a text source without ``val_data``: decided on the text, before any tokenizer.

One document (a text file, the built-in Shakespeare): validation is its last ``val_fraction`` of the
characters, ``text[int((1 - val_fraction) * len(text)):]``, as nanoGPT cuts it. Several documents:
validation is the last whole documents, from the first one that starts at or after that fraction of all
their characters (at least the last document, at most all but the first).

Splitting the text rather than the token stream means the validation text does not depend on the
tokenizer, and a tokenizer trained on the data (``TokenizerSource``) is trained on the training part only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class HeldOutSplit:
    """Where a source's documents split into training and validation text.

    Args:
        documents: Number of documents in the source.
        first_val_document: Index of the first validation document (the one cut in two when there is one).
        cut: With one document, the character where validation starts; None with several.
    """

    documents: int
    first_val_document: int
    cut: int | None

    @classmethod
    def of(cls, documents: Iterable[str], val_fraction: float) -> HeldOutSplit:
        """The split of ``documents`` (read once, only their lengths are kept) for ``val_fraction``."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        lengths = [len(doc) for doc in documents]
        total = sum(lengths)
        cut = int(total * (1 - val_fraction))
        if len(lengths) <= 1:
            return cls(len(lengths), 0, cut)
        starts = list(itertools.accumulate(lengths, initial=0))[:-1]
        first = next((i for i, start in enumerate(starts) if start >= cut), len(lengths) - 1)
        return cls(len(lengths), min(max(first, 1), len(lengths) - 1), None)

    def training(self, documents: Iterable[str]) -> Iterator[str]:
        """The training part of ``documents`` (the same documents ``of`` measured, in the same order)."""
        for i, doc in enumerate(itertools.islice(documents, self.first_val_document + 1)):
            if i < self.first_val_document:
                yield doc
            elif self.cut is not None:
                yield doc[: self.cut]

    def validation(self, documents: Iterable[str]) -> Iterator[str]:
        """The held-out part of ``documents``."""
        for i, doc in enumerate(documents):
            if i == self.first_val_document and self.cut is not None:
                yield doc[self.cut :]
            elif i >= self.first_val_document:
                yield doc

    def describe(self) -> str:
        """One phrase for the log line: what was held out."""
        if self.cut is not None:
            return f"the text from character {self.cut:,}"
        return f"documents {self.first_val_document + 1:,}-{self.documents:,} of {self.documents:,}"
