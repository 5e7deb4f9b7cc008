import torch

from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.train.distributed import recompute_block_activations


def test_activation_checkpointing_gives_the_same_gradients_and_names():
    torch.manual_seed(0)
    plain = GPT(ModelConfig.from_name("tiny-llama"))
    checkpointed = GPT(ModelConfig.from_name("tiny-llama"))
    checkpointed.load_state_dict(plain.state_dict())
    recompute_block_activations(checkpointed)
    assert [n for n, _ in checkpointed.named_parameters()] == [n for n, _ in plain.named_parameters()]
    idx = torch.randint(0, 512, (2, 32))
    for model in (plain, checkpointed):
        model(idx).logsumexp(-1).mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_a_loader_that_does_not_split_the_data_over_all_processes_is_named():
    from torch.utils.data import DataLoader, DistributedSampler

    from litllm.train.distributed import check_data_split

    data = list(range(16))
    assert check_data_split(DataLoader(data), world_size=1) is None
    split = DataLoader(data, sampler=DistributedSampler(data, num_replicas=4, rank=0))
    assert check_data_split(split, world_size=4) is None
    # What Lightning's ModelParallelStrategy injects on one node: one data-parallel rank.
    per_node = DataLoader(data, sampler=DistributedSampler(data, num_replicas=1, rank=0))
    problem = check_data_split(per_node, world_size=4)
    assert "over 1 process(es), but 4 train" in problem
    assert "over 1 process(es)" in check_data_split(DataLoader(data, shuffle=True), world_size=2)
