"""Report cards: what a run or a pipeline produced, as ``report.md`` and a self-contained ``report.html``."""
