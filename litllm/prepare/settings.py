"""The settings of a ``litllm prepare`` run: everything that decides its output.

They travel to every worker process, are stored in the manifest, and their digest guards resume:
the parts of an interrupted run are reused only by a run with the same settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from litllm.prepare.dedup import DedupConfig
from litllm.prepare.filters import FilterConfig
from litllm.prepare.quality import QualityConfig


@dataclass
class PrepareSettings:
    """Everything that decides the output; a resumed run must have the same."""

    text_field: str = "text"
    dataset_config: str | None = None
    dataset_split: str = "train"
    clean: bool = True
    on_decode_error: Literal["replace", "skip"] = "replace"
    filters: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    shard_tokens: int = 1 << 26
    tokenizer_fingerprint: str = ""

    def digest(self) -> str:
        """Short hash of every setting (stable across runs: keys sorted, non-JSON values as strings)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        """The settings as plain JSON values, for the manifest and the resume state."""
        return json.loads(json.dumps(asdict(self), default=str))

    def drop_reasons(self) -> list[str]:
        """Every reason a document can be dropped, in pipeline order (index + 1 is its code in the parts)."""
        reasons = ["empty", *(self.filters.filter_names() if self.clean else [])]
        if self.clean and self.filters.min_chars_per_token is not None:
            reasons.append("min_chars_per_token")
        if self.quality.enabled:
            reasons.append("quality")
        return reasons
