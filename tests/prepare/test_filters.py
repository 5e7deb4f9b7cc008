"""Each document filter on hand-written documents that should pass and fail it."""

from __future__ import annotations

import dataclasses

import pytest

from litllm.prepare.filters import FilterConfig, first_failing_filter, letter_count, normalize

PROSE = (
    "The river had risen in the night, and by morning the lower fields were under water. "
    "Farmers walked the embankment with lanterns, listening for the sound of a breach. "
    "Nobody in the village could remember a flood like it; the oldest said that their parents "
    "had spoken of one, long ago, that carried away the mill and the bridge with it.\n"
    "By noon the rain stopped. Children came out to look at the brown water, and the baker "
    "opened his shop as if nothing had happened, because bread is wanted on the worst of days."
)


def only(name: str, value) -> FilterConfig:
    """A configuration with every filter off except ``name``."""
    off = {f.name: None for f in dataclasses.fields(FilterConfig) if f.name not in ("normalization", "stop_words")}
    off["stop_words"] = "en" if name == "min_stop_words" else None
    return FilterConfig(**{**off, name: value})


def reason(text: str, config: FilterConfig) -> str | None:
    return first_failing_filter(text, config, config.stop_word_set)


def test_prose_passes_every_default_filter():
    assert reason(PROSE, FilterConfig()) is None


@pytest.mark.parametrize(
    ("name", "value", "bad"),
    [
        ("min_chars", 200, "Too short to be a page."),
        ("max_chars", 2000, PROSE * 5),
        ("min_words", 50, "A sentence of a few words only, the end."),
        ("max_words", 200, PROSE * 3),
        ("min_mean_word_length", 3.0, "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 4),
        ("max_mean_word_length", 10.0, "https://example.com/a/very/long/path?with=query&and=more " * 20),
        ("min_alpha_fraction", 0.7, "2021-03-04 12:00 42.5 17 | 99.1 33 | 2021-03-05 08:30 41.0 12 | " * 10),
        ("max_symbol_word_ratio", 0.1, "#tbt #love #instagood #photooftheday the best day with friends... " * 10),
        ("min_stop_words", 2, "Stock prices rose sharply after earnings; analysts expect gains. " * 10),
        ("min_punctuation_line_fraction", 0.12, "\n".join(["Home", "About us", "Products", "Contact"] * 20)),
        ("max_duplicate_line_fraction", 0.3, "\n".join(["Click here to subscribe."] * 10 + PROSE.split(". "))),
        ("max_top_ngram_fraction", {2: 0.2}, "best price best price best price and the offer of the day " * 20),
        ("max_duplicate_ngram_fraction", {5: 0.15}, PROSE + " " + PROSE[:300]),
    ],
)
def test_each_filter_passes_prose_and_drops_its_bad_document(name, value, bad):
    config = only(name, value)
    assert reason(PROSE, config) is None, f"{name} dropped good prose"
    expected = name
    if isinstance(value, dict):
        (n,) = value
        expected = name.replace("_ngram_", f"_{n}gram_")
    assert reason(bad, config) == expected


def test_whitespace_only_document_is_empty():
    assert reason("   \n\t  ", FilterConfig(min_chars=None)) == "empty"


def test_filter_names_follow_the_configuration():
    names = FilterConfig(min_words=None, max_top_ngram_fraction={2: 0.2}).filter_names()
    assert "min_words" not in names and "max_top_2gram_fraction" in names and "max_top_3gram_fraction" not in names


def test_unknown_stop_word_language_is_named():
    with pytest.raises(ValueError, match="stop_words='xx'"):
        FilterConfig(stop_words="xx")


def test_ngram_thresholds_accept_string_keys_from_yaml():
    assert FilterConfig(max_top_ngram_fraction={"2": 0.25}).max_top_ngram_fraction == {2: 0.25}


def test_letter_count_ascii_and_unicode_agree():
    assert letter_count("abc 123 !?") == 3
    assert letter_count("Größe 12 Öl") == 7  # non-ASCII path


def test_normalization_composes_characters():
    decomposed = "Cafe\u0301"
    assert normalize(decomposed, "NFC") == "Caf\u00e9"
    assert normalize("\uff21", "NFKC") == "A"  # full-width A
    assert normalize(decomposed, "none") == decomposed
