"""litllm: from raw text to a chat model you trained yourself, on PyTorch Lightning."""

from litllm.config import PRESETS, ModelConfig
from litllm.model import GPT
from litllm.tokenizer import Tokenizer, train_bpe

__version__ = "0.1.0"
__all__ = ["GPT", "PRESETS", "ModelConfig", "Tokenizer", "train_bpe", "__version__"]
