"""Train, load and save byte-level BPE tokenizers (Hugging Face ``tokenizers``).

A ``Tokenizer`` wraps a ``tokenizers.Tokenizer`` and knows its end-of-text token. Any local
``tokenizer.json`` loads, including GPT-2's; ``train_bpe`` makes a new one from text files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from litllm.model.model_dir import ModelDir

EOT = "<|endoftext|>"
"""End-of-text: separates documents in pretraining and ends every response in finetuning."""

# Candidates for the end-of-text token when loading a tokenizer someone else made.
_EOT_CANDIDATES = (EOT, "</s>", "<|end_of_text|>", "<|im_end|>", "<eos>")


class Tokenizer:
    """A text <-> token-id codec with a known end-of-text id."""

    def __init__(self, backend: HFTokenizer, eot_token: str | None = None) -> None:
        self.backend = backend
        token = eot_token or next((t for t in _EOT_CANDIDATES if backend.token_to_id(t) is not None), None)
        if token is None or backend.token_to_id(token) is None:
            raise ValueError(
                f"the tokenizer has no end-of-text token (looked for {eot_token or _EOT_CANDIDATES}); "
                "train it with one or name it with eot_token"
            )
        self.eot_token = token
        self.eot_id: int = backend.token_to_id(token)

    # ------------------------------------------------------------------ io
    @classmethod
    def from_file(cls, path: str | Path, eot_token: str | None = None) -> Tokenizer:
        """Load a ``tokenizer.json`` file, or the one inside a model directory."""
        path = ModelDir.tokenizer_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        try:
            backend = HFTokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"{path}: not a valid tokenizer.json ({err})") from err
        return cls(backend, eot_token)

    def save(self, path: str | Path) -> Path:
        """Write ``tokenizer.json`` (to ``path`` itself, or inside it when it is a directory)."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = ModelDir(path).tokenizer_file
        path.parent.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(path))
        return path

    # ------------------------------------------------------------------ codec
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def fingerprint(self) -> str:
        """A hash of the full tokenizer definition: caches and checkpoints key on it."""
        return hashlib.sha256(self.backend.to_str().encode("utf-8")).hexdigest()[:16]


def train_bpe(
    files: Iterable[str | Path] | None = None,
    vocab_size: int = 8192,
    special_tokens: Iterable[str] = (EOT,),
    min_frequency: int = 2,
    texts: Iterator[str] | None = None,
) -> Tokenizer:
    """Train a byte-level BPE (the GPT-2 scheme: any byte sequence encodes, nothing is unknown).

    Give text ``files`` or an iterator of ``texts``. The first special token is end-of-text.
    """
    special = list(special_tokens)
    if not special:
        raise ValueError("train_bpe needs at least one special token (the first is end-of-text)")
    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    if texts is not None:
        backend.train_from_iterator(texts, trainer=trainer)
    else:
        paths = [str(p) for p in files or []]
        if not paths:
            raise ValueError("train_bpe needs at least one text file")
        for p in paths:
            if not Path(p).is_file():
                raise FileNotFoundError(f"training text not found: {p}")
        backend.train(paths, trainer=trainer)
    return Tokenizer(backend, eot_token=special[0])
