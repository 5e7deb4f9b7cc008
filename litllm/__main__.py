"""``python -m litllm``: the same as the ``litllm`` command."""

from litllm.cli import main

main()
