import torch

from litllm.config import ModelConfig
from litllm.distributed import checkpoint_blocks
from litllm.model import GPT


def test_activation_checkpointing_gives_the_same_gradients_and_names():
    torch.manual_seed(0)
    plain = GPT(ModelConfig.from_name("tiny-llama"))
    checkpointed = GPT(ModelConfig.from_name("tiny-llama"))
    checkpointed.load_state_dict(plain.state_dict())
    checkpoint_blocks(checkpointed)
    assert [n for n, _ in checkpointed.named_parameters()] == [n for n, _ in plain.named_parameters()]
    idx = torch.randint(0, 512, (2, 32))
    for model in (plain, checkpointed):
        model(idx).logsumexp(-1).mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=name)
