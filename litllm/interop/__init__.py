"""Other tools' formats: Hugging Face import and export (``litllm convert``) and the lm-evaluation-harness
model."""
