"""A model-based quality score: logistic regression on hashed word unigrams and bigrams.

Trained from example files of documents you want (positive) and do not want (negative), in the
same formats ``litllm prepare`` reads. The score of a document is the model's probability that it
belongs with the positives. It is a fastText-style linear classifier: cheap enough to run on every
document of a web crawl on CPU, and good at "reads like X" judgements (e.g. positives from a
curated corpus, negatives from the raw crawl).

Saved as safetensors (weights) with the settings in its metadata: nothing is unpickled.
``quality_model_path`` is the pipeline's glue: the scorer a run uses, trained from its example files if need be.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litllm.errors import DataError
from litllm.prepare.filters import DocStats, ngram_keys
from litllm.prepare.inputs import expand_inputs, plan_units, read_unit


@dataclass
class QualityConfig:
    """The optional quality scorer."""

    model: str | None = None
    """A scorer saved by an earlier run (``quality_model.safetensors``); None trains one from the example
    files below, or runs without a scorer if there are none."""
    positive: list[str] | None = None
    """Files (globs) of documents to keep, e.g. a curated corpus."""
    negative: list[str] | None = None
    """Files (globs) of documents to drop, e.g. a sample of the raw crawl or spam."""
    threshold: float = 0.5
    """Drop documents whose score (probability of looking like the positives) is below this."""
    buckets: int = 1 << 18
    """Size of the hashed feature space (words and word pairs share it)."""
    epochs: int = 10
    """Training passes over the examples."""
    learning_rate: float = 0.5
    """Adagrad step size of training."""

    @property
    def enabled(self) -> bool:
        return self.model is not None or bool(self.positive)


def features(stats: DocStats, buckets: int) -> np.ndarray:
    """Bucket indices of the document's words and word pairs (repeats kept: term frequency)."""
    hashes = stats.word_hashes
    return np.concatenate([hashes, ngram_keys(hashes, 2)]) % np.uint64(buckets)


class QualityModel:
    """Logistic regression over hashed features; ``score`` is P(positive)."""

    def __init__(self, weight: np.ndarray, bias: float) -> None:
        self.weight, self.bias = weight.astype(np.float32), float(bias)

    @property
    def buckets(self) -> int:
        return len(self.weight)

    def logit(self, stats: DocStats) -> float:
        idx = features(stats, self.buckets)
        if len(idx) == 0:
            return self.bias
        # Sum of weights scaled by 1/sqrt(length): long and short documents land on one scale.
        return self.bias + float(self.weight[idx].sum()) / math.sqrt(len(idx))

    def score(self, stats: DocStats) -> float:
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, self.logit(stats)))))

    @classmethod
    def train(
        cls,
        positive: Iterable[str],
        negative: Iterable[str],
        buckets: int = 1 << 18,
        epochs: int = 10,
        learning_rate: float = 0.5,
        seed: int = 0,
    ) -> QualityModel:
        """Fit on documents by stochastic gradient descent (Adagrad) on the logistic loss."""
        examples = [(features(DocStats(t), buckets), 1.0) for t in positive]
        n_pos = len(examples)
        examples += [(features(DocStats(t), buckets), 0.0) for t in negative]
        if n_pos == 0 or n_pos == len(examples):
            raise DataError("the quality scorer needs both positive and negative example documents")
        weight = np.zeros(buckets, dtype=np.float64)
        squared = np.full(buckets, 1e-8)  # Adagrad's running sum of squared gradients
        bias, bias_squared = 0.0, 1e-8
        # Balance the classes: each side contributes half of the loss whatever its size.
        class_weight = {1.0: len(examples) / (2 * n_pos), 0.0: len(examples) / (2 * (len(examples) - n_pos))}
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            for i in rng.permutation(len(examples)):
                idx, label = examples[i]
                if len(idx) == 0:
                    continue
                scale = 1.0 / math.sqrt(len(idx))
                z = bias + weight[idx].sum() * scale
                p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
                g = (p - label) * class_weight[label]
                touched, counts = np.unique(idx, return_counts=True)
                grad = counts * (g * scale)
                squared[touched] += grad**2
                weight[touched] -= learning_rate * grad / np.sqrt(squared[touched])
                bias_squared += g * g
                bias -= learning_rate * g / math.sqrt(bias_squared)
        return cls(weight, bias)

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"weight": self.weight, "bias": np.array([self.bias], dtype=np.float32)},
            str(path),
            metadata={"format": "litllm-quality", "features": "word unigrams+bigrams, crc32, hashed"},
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"quality model not found: {path}")
        with safe_open(str(path), framework="numpy") as f:
            if (f.metadata() or {}).get("format") != "litllm-quality":
                raise DataError(f"{path}: not a litllm quality model (no litllm-quality metadata)")
            return cls(f.get_tensor("weight"), float(f.get_tensor("bias")[0]))


def quality_model_path(config: QualityConfig, out: Path, text_field: str, policy: str, unit_bytes: int) -> str | None:
    """The scorer a ``litllm prepare`` run uses: the given model, or one trained here from the example files.

    A model trained here is saved in ``out`` and reused by a resumed run. None when no scorer is set.
    """
    if not config.enabled:
        return None
    if config.model is not None:
        QualityModel.load(config.model)  # fail now, not in every worker
        return config.model
    path = out / "quality_model.safetensors"
    if path.is_file():
        return str(path)
    if not config.negative:
        raise DataError("quality.positive is set but quality.negative is not: the scorer needs both")

    def documents(patterns: list[str]) -> Iterator[str]:
        files = expand_inputs(patterns)
        if files is None:
            raise DataError(f"quality examples must be files, got {patterns}")
        for unit in plan_units(files, unit_bytes):
            yield from (r.text for r in read_unit(unit, text_field, policy) if r.text)

    model = QualityModel.train(
        documents(config.positive), documents(config.negative), config.buckets, config.epochs, config.learning_rate
    )
    model.save(path)
    return str(path)
