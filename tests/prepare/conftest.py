"""Documents for the data-pipeline tests: distinct passages of the built-in Shakespeare corpus."""

from __future__ import annotations

import pytest

from litllm.corpus.readers import BUILTIN_CORPORA


def passages(min_chars: int = 1200) -> list[str]:
    """Consecutive passages of the corpus, each at least ``min_chars`` long, cut at blank lines."""
    text = BUILTIN_CORPORA["shakespeare"].read_text(encoding="utf-8")
    out, current = [], ""
    for paragraph in text.split("\n\n"):
        current += paragraph + "\n\n"
        if len(current) >= min_chars:
            out.append(current)
            current = ""
    return out


@pytest.fixture(scope="session")
def shakespeare_passages() -> list[str]:
    return passages()
