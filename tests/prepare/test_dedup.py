"""Exact and near-duplicate detection on planted duplicates."""

from __future__ import annotations

import random

import numpy as np

from litllm.prepare.dedup import DedupConfig, MinHasher, exact_duplicates, exact_hash, lsh_banding, near_duplicates
from litllm.prepare.filters import DocStats


def signatures(docs: list[str], config: DedupConfig) -> np.ndarray:
    hasher = MinHasher(config.num_perm, config.ngram, config.seed)
    return np.stack([hasher.signature(DocStats(d).word_hashes) for d in docs])


def edit(text: str, rng: random.Random, fraction: float) -> str:
    """A near-duplicate: about ``fraction`` of the words replaced, deleted or inserted, plus a new first line."""
    words = text.split()
    for _ in range(max(1, int(len(words) * fraction))):
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 1 / 3:
            words[i] = rng.choice(["lo", "anon", "forsooth"])
        elif op < 2 / 3 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, "marry")
    return f"Posted on day {rng.randrange(1000)}\n" + " ".join(words)


def test_exact_duplicates_ignore_case_and_whitespace():
    docs = ["Hello  world\n", "hello world", "Hello there", "HELLO\tWORLD"]
    hashes = np.array([exact_hash(d) for d in docs], dtype=np.uint64)
    assert exact_duplicates(hashes).tolist() == [False, True, False, True]


def test_planted_near_duplicates_are_found_and_distinct_documents_are_not_merged(shakespeare_passages):
    rng = random.Random(0)
    originals = shakespeare_passages[:300]
    planted = [edit(d, rng, 0.02) for d in originals[:100]]
    config = DedupConfig()
    bands, rows = config.banding()
    dup = near_duplicates(signatures(originals + planted, config), config.threshold, bands, rows)
    recall = dup[len(originals) :].mean()
    assert recall >= 0.9, f"recall of planted near-duplicates {recall:.2f}"
    assert not dup[: len(originals)].any(), "distinct passages were merged"


def test_the_first_of_a_cluster_is_kept(shakespeare_passages):
    base = shakespeare_passages[0]
    docs = [shakespeare_passages[1], base, base + " Exeunt.", shakespeare_passages[2], base + " Exit."]
    config = DedupConfig()
    dup = near_duplicates(signatures(docs, config), config.threshold, *config.banding())
    assert dup.tolist() == [False, False, True, False, True]


def test_signatures_are_the_same_in_every_process():
    """No Python hash() (salted per process): the signature of a text is a pure function of it."""
    import subprocess
    import sys

    code = (
        "from litllm.prepare.dedup import MinHasher; from litllm.prepare.filters import DocStats;"
        "print(MinHasher(16, 3, 1).signature(DocStats('to be or not to be that is the question').word_hashes).tolist())"
    )
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    here = MinHasher(16, 3, 1).signature(DocStats("to be or not to be that is the question").word_hashes).tolist()
    assert runs == {f"{here}\n"}


def test_banding_tracks_the_threshold():
    for threshold in (0.5, 0.7, 0.85):
        bands, rows = lsh_banding(threshold, 128)
        assert bands * rows <= 128
        # The S-curve's midpoint (1/b)^(1/r) lies near the threshold.
        assert abs((1 / bands) ** (1 / rows) - threshold) < 0.1
