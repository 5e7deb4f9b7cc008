"""The hashed-n-gram quality scorer separates held-out documents and round-trips through safetensors."""

from __future__ import annotations

import random

import pytest

from litllm.errors import DataError
from litllm.prepare.filters import DocStats
from litllm.prepare.quality import QualityModel

SPAM_WORDS = [
    "buy",
    "cheap",
    "pills",
    "online",
    "now",
    "click",
    "here",
    "free",
    "casino",
    "bonus",
    "win",
    "money",
    "fast",
    "best",
    "price",
    "discount",
]


def spam(rng: random.Random, words: list[str], n: int = 200) -> str:
    return " ".join(rng.choice(SPAM_WORDS) if rng.random() < 0.5 else rng.choice(words) for _ in range(n))


def test_scorer_separates_held_out_documents_and_saves(tmp_path, shakespeare_passages):
    rng = random.Random(0)
    words = " ".join(shakespeare_passages).split()
    good = shakespeare_passages[:200]
    bad = [spam(rng, words) for _ in range(200)]
    model = QualityModel.train(good[::2], bad[::2], buckets=1 << 16, epochs=5)
    held_out = [(d, 1) for d in good[1::2]] + [(d, 0) for d in bad[1::2]]
    accuracy = sum((model.score(DocStats(d)) > 0.5) == label for d, label in held_out) / len(held_out)
    assert accuracy >= 0.95
    loaded = QualityModel.load(model.save(tmp_path / "q.safetensors"))
    assert loaded.score(DocStats(good[1])) == pytest.approx(model.score(DocStats(good[1])), abs=1e-6)


def test_scorer_needs_both_classes():
    with pytest.raises(DataError, match="both positive and negative"):
        QualityModel.train(["a b c"], [])


def test_loading_a_foreign_file_is_refused(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros(4, np.float32)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(DataError, match="not a litllm quality model"):
        QualityModel.load(tmp_path / "x.safetensors")
