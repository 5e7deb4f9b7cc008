"""Using a model directory: sampling on the KV cache, text streaming (``litllm generate``), ``litllm chat``
and ``litllm evaluate``. Nothing here imports Lightning."""
