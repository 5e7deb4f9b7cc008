"""Document-level cleaning: Unicode normalisation and heuristic quality filters.

Each filter looks at one document and either keeps it or names itself as the reason to drop it.
Thresholds live in ``FilterConfig`` (one field per filter, ``None`` switches a filter off), so a
recipe sets every one of them. The defaults follow published web-corpus pipelines: the Gopher
rules (Rae et al., 2021) for length, word length, symbols, stop words and repetition, and
FineWeb's (Penedo et al., 2024) fraction of lines ending in punctuation.

The statistics are computed once per document (``DocStats``) and shared by every filter, because
on CPU the filters must cost a fraction of what tokenizing the same text costs.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

STOP_WORDS: dict[str, frozenset[str]] = {
    # Gopher's list: function words that nearly every sentence of English prose contains.
    "en": frozenset(["the", "be", "to", "of", "and", "that", "have", "with"]),
    "de": frozenset(["der", "die", "das", "und", "zu", "den", "ist", "nicht", "mit", "von"]),
    "fr": frozenset(["le", "la", "les", "de", "et", "un", "une", "est", "que", "des"]),
    "es": frozenset(["el", "la", "de", "que", "y", "en", "los", "se", "del", "las"]),
}
"""Stop words per language code; ``FilterConfig.stop_words`` can give a list of its own instead."""

PUNCTUATION_ENDINGS = (".", "!", "?", '"', "'", "\u201d", "\u2019", ")", ":", ";", "\u2026")
"""A line that ends in one of these reads like a sentence (or a speaker's name, a list header)."""

_NOT_A_LETTER = re.compile(r"[\W\d_]+")
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())
_NGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant that mixes word hashes into n-gram keys


@dataclass
class FilterConfig:
    """Thresholds of the document filters. ``None`` switches a filter off."""

    normalization: Literal["NFC", "NFKC", "none"] = "NFC"
    """Unicode normal form applied to every document before anything else (NFKC also folds look-alike
    characters such as full-width letters and ligatures)."""
    min_chars: int | None = 200
    """Drop documents shorter than this many characters."""
    max_chars: int | None = 1_000_000
    """Drop documents longer than this many characters."""
    min_words: int | None = 50
    """Drop documents with fewer whitespace-separated words (Gopher: 50)."""
    max_words: int | None = 100_000
    """Drop documents with more words (Gopher: 100,000)."""
    min_mean_word_length: float | None = 3.0
    """Drop documents whose mean word length is below this (Gopher: 3): tables, lists of numbers."""
    max_mean_word_length: float | None = 10.0
    """Drop documents whose mean word length is above this (Gopher: 10): URLs, hashes, base64."""
    min_alpha_fraction: float | None = 0.7
    """Drop documents in which letters make up less than this fraction of the non-space characters."""
    max_symbol_word_ratio: float | None = 0.1
    """Drop documents with more than this many '#' and ellipses per word (Gopher: 0.1)."""
    stop_words: str | list[str] | None = "en"
    """A language code of ``STOP_WORDS`` or a list of words; None switches the stop-word filter off."""
    min_stop_words: int | None = 2
    """Drop documents containing fewer distinct stop words (Gopher: 2): not prose in this language."""
    min_punctuation_line_fraction: float | None = 0.12
    """Drop documents in which fewer of the non-empty lines end in punctuation (FineWeb: 0.12): menus, link lists."""
    max_duplicate_line_fraction: float | None = 0.3
    """Drop documents in which more of the non-empty lines repeat an earlier line (Gopher: 0.3)."""
    max_top_ngram_fraction: dict[int, float] | None = field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    """Per n: drop documents whose most frequent word n-gram covers more than this fraction of the
    characters (Gopher: 0.20, 0.18, 0.16 for n = 2, 3, 4)."""
    max_duplicate_ngram_fraction: dict[int, float] | None = field(default_factory=lambda: {5: 0.15})
    """Per n: drop documents in which word n-grams that occur more than once cover more than this fraction
    of the characters (Gopher: 0.15 for n = 5 down to 0.10 for n = 10; each n costs about as much as a
    fifth of tokenizing the document, so the default checks n = 5 only)."""
    min_chars_per_token: float | None = 1.5
    """After tokenization: drop documents with fewer characters per token; text the tokenizer splits into
    tiny pieces is usually noise, binary or a script the tokenizer was not trained on."""

    def __post_init__(self) -> None:
        if isinstance(self.stop_words, str) and self.stop_words not in STOP_WORDS:
            raise ValueError(
                f"filters.stop_words={self.stop_words!r}: no stop-word list for this language "
                f"(have {sorted(STOP_WORDS)}); give a list of words instead"
            )
        self.max_top_ngram_fraction = _int_keys(self.max_top_ngram_fraction)
        self.max_duplicate_ngram_fraction = _int_keys(self.max_duplicate_ngram_fraction)

    @property
    def stop_word_set(self) -> frozenset[str] | None:
        if self.stop_words is None:
            return None
        if isinstance(self.stop_words, str):
            return STOP_WORDS[self.stop_words]
        return frozenset(w.lower() for w in self.stop_words)  # documents are compared in lower case

    def filter_names(self) -> list[str]:
        """Names of the filters that are on, in the order they run; drop reasons use these names."""
        names = []
        for name, on in (
            ("min_chars", self.min_chars),
            ("max_chars", self.max_chars),
            ("min_words", self.min_words),
            ("max_words", self.max_words),
            ("min_mean_word_length", self.min_mean_word_length),
            ("max_mean_word_length", self.max_mean_word_length),
            ("min_alpha_fraction", self.min_alpha_fraction),
            ("max_symbol_word_ratio", self.max_symbol_word_ratio),
            ("min_stop_words", self.min_stop_words if self.stop_words is not None else None),
            ("min_punctuation_line_fraction", self.min_punctuation_line_fraction),
            ("max_duplicate_line_fraction", self.max_duplicate_line_fraction),
        ):
            if on is not None:
                names.append(name)
        names += [f"max_top_{n}gram_fraction" for n in sorted(self.max_top_ngram_fraction or {})]
        names += [f"max_duplicate_{n}gram_fraction" for n in sorted(self.max_duplicate_ngram_fraction or {})]
        return names


def _int_keys(mapping: dict | None) -> dict[int, float] | None:
    # YAML and the command line give the n of an n-gram as a string key.
    return None if mapping is None else {int(n): float(v) for n, v in mapping.items()}


def normalize(text: str, form: str) -> str:
    """Unicode normalisation (cheap for text that is already normalised, e.g. plain ASCII)."""
    if form == "none" or unicodedata.is_normalized(form, text):
        return text
    return unicodedata.normalize(form, text)


class DocStats:
    """Statistics of one document, each computed at most once, on first use."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def words(self) -> list[str]:
        return self.text.lower().split()

    @cached_property
    def word_chars(self) -> int:
        """Characters inside words, i.e. the non-whitespace characters."""
        return sum(map(len, self.words))

    @cached_property
    def lines(self) -> list[str]:
        return [line.strip() for line in self.text.splitlines() if line.strip()]

    @cached_property
    def word_hashes(self) -> np.ndarray:
        """A stable 32-bit hash (CRC-32) of every word, as uint64: n-gram statistics and MinHash use them."""
        return np.fromiter(map(zlib.crc32, map(str.encode, self.words)), dtype=np.uint64, count=len(self.words))

    @cached_property
    def word_lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.words), dtype=np.int64, count=len(self.words))

    @cached_property
    def word_ends(self) -> np.ndarray:
        """``word_ends[i]``: characters in words before word i (so a span's characters are a difference)."""
        return np.concatenate([[0], np.cumsum(self.word_lengths)])

    def ngram_repetition(self, n: int, coverage: bool) -> tuple[int, int]:
        """Word n-gram repetition, in characters.

        Returns (characters of the most frequent n-gram times its count if it occurs more than once,
        characters of the words covered by any n-gram that occurs more than once; 0 unless ``coverage``).
        """
        keys = ngram_keys(self.word_hashes, n)
        m = len(keys)
        if m < 2:
            return 0, 0
        order = np.argsort(keys, kind="stable")
        ranked = keys[order]
        starts = np.flatnonzero(np.concatenate([[True], ranked[1:] != ranked[:-1]]))
        counts = np.diff(np.append(starts, m))
        top = int(counts.argmax())
        if counts[top] == 1:
            return 0, 0
        word_ends = self.word_ends
        first = int(order[starts[top]])  # the earliest occurrence of the most frequent n-gram
        top_chars = int(word_ends[first + n] - word_ends[first]) * int(counts[top])
        if not coverage:
            return top_chars, 0
        repeated = np.empty(m, dtype=np.int8)
        repeated[order] = np.repeat(counts, counts) > 1
        # A word is covered if any of the n n-grams that contain it is repeated.
        covered = np.convolve(repeated, np.ones(n, dtype=np.int8))[: len(self.words)] > 0
        return top_chars, int(np.diff(word_ends)[covered].sum())


def ngram_keys(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit key per word n-gram, combined from the word hashes (arithmetic wraps mod 2^64)."""
    n = min(n, len(word_hashes))
    m = len(word_hashes) - n + 1
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    keys = word_hashes[:m].copy()
    for j in range(1, n):
        keys = keys * _NGRAM_MULTIPLIER + word_hashes[j : m + j]
    return keys


def first_failing_filter(text: str, config: FilterConfig, stop_words: frozenset[str] | None) -> str | None:
    """The name of the first filter that drops ``text``, or None if the document passes them all.

    ``stop_words`` is ``config.stop_word_set``, passed in so it is built once per run, not per document.
    """
    n_chars = len(text)
    if config.min_chars is not None and n_chars < config.min_chars:
        return "min_chars"
    if config.max_chars is not None and n_chars > config.max_chars:
        return "max_chars"
    doc = DocStats(text)
    words = doc.words
    n_words = len(words)
    if n_words == 0:
        return "empty"
    if config.min_words is not None and n_words < config.min_words:
        return "min_words"
    if config.max_words is not None and n_words > config.max_words:
        return "max_words"
    mean_word_length = doc.word_chars / n_words
    if config.min_mean_word_length is not None and mean_word_length < config.min_mean_word_length:
        return "min_mean_word_length"
    if config.max_mean_word_length is not None and mean_word_length > config.max_mean_word_length:
        return "max_mean_word_length"
    if config.min_alpha_fraction is not None and letter_count(text) < config.min_alpha_fraction * doc.word_chars:
        return "min_alpha_fraction"
    if config.max_symbol_word_ratio is not None:
        symbols = text.count("#") + text.count("...") + text.count("\u2026")
        if symbols > config.max_symbol_word_ratio * n_words:
            return "max_symbol_word_ratio"
    if (
        stop_words is not None
        and config.min_stop_words is not None
        and len(stop_words.intersection(words)) < config.min_stop_words
    ):
        return "min_stop_words"
    if config.min_punctuation_line_fraction is not None or config.max_duplicate_line_fraction is not None:
        lines = doc.lines
        if not lines:
            return "empty"
        if config.min_punctuation_line_fraction is not None:
            ending = sum(1 for line in lines if line.endswith(PUNCTUATION_ENDINGS))
            if ending < config.min_punctuation_line_fraction * len(lines):
                return "min_punctuation_line_fraction"
        repeated_lines = len(lines) - len(set(lines))
        if config.max_duplicate_line_fraction is not None and repeated_lines > config.max_duplicate_line_fraction * len(
            lines
        ):
            return "max_duplicate_line_fraction"
    top = config.max_top_ngram_fraction or {}
    dup = config.max_duplicate_ngram_fraction or {}
    for n in sorted(set(top) | set(dup)):
        top_chars, dup_chars = doc.ngram_repetition(n, coverage=n in dup)
        if n in top and top_chars > top[n] * doc.word_chars:
            return f"max_top_{n}gram_fraction"
        if n in dup and dup_chars > dup[n] * doc.word_chars:
            return f"max_duplicate_{n}gram_fraction"
    return None


def letter_count(text: str) -> int:
    """Number of letters (any script) in ``text``."""
    if text.isascii():  # the common case, at memory speed
        return len(text.encode("ascii").translate(None, _ASCII_NON_LETTERS))
    return len(_NOT_A_LETTER.sub("", text))
