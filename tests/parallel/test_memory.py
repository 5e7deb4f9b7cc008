"""The memory estimator against what a real training step holds: model states exactly, activations by
the bytes autograd saves in a forward pass, on tiny GPT-2- and Llama-style models (CPU, float32)."""

from __future__ import annotations

import pytest
import torch

from litllm.model.config import resolve_config
from litllm.model.gpt import GPT
from litllm.parallel.memory import Layout, estimate_memory, main, table
from litllm.train.optim import parameter_groups
from litllm.train.pretrain import next_token_loss

SHAPES = [
    ("tiny-gpt2", {}),
    ("tiny-llama", {}),
    ("tiny-llama", {"qk_norm": True, "n_kv_head": 4}),
    ("gpt-10m", {"n_layer": 2}),
    ("llama-10m", {"n_layer": 2}),
]


def saved_activation_bytes(model: GPT, ids: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward, weights and buffers excluded."""
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = next_token_loss(model(ids[:, :-1]), ids[:, 1:])
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    loss.backward()
    return sum(n for ptr, n in kept.items() if ptr not in own)


@pytest.mark.parametrize(("arch", "overrides"), SHAPES, ids=lambda x: str(x))
def test_activations_are_what_autograd_keeps(arch, overrides):
    config = resolve_config(arch, overrides)
    torch.manual_seed(0)
    model = GPT(config).train()
    batch, seq = 4, config.block_size
    ids = torch.randint(config.vocab_size, (batch, seq + 1))
    measured = saved_activation_bytes(model, ids)
    estimate = estimate_memory(config, batch, seq, precision="32-true").activations
    assert estimate == pytest.approx(measured, rel=0.05), (estimate, measured)


@pytest.mark.parametrize(("arch", "overrides"), SHAPES[:3], ids=lambda x: str(x))
def test_model_states_are_exact(arch, overrides):
    """Weights, gradients and AdamW's moments after a real step: the tensors' bytes, to the byte."""
    config = resolve_config(arch, overrides)
    model = GPT(config)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.1), lr=1e-3)
    ids = torch.randint(config.vocab_size, (2, 17))
    next_token_loss(model(ids[:, :-1]), ids[:, 1:]).backward()
    optimizer.step()
    params = list(model.parameters())
    moments = [v for state in optimizer.state.values() for k, v in state.items() if k != "step"]
    estimate = estimate_memory(config, 2, 16, precision="32-true")
    assert estimate.weights == sum(p.nbytes for p in params)
    assert estimate.gradients == sum(p.grad.nbytes for p in params)
    assert estimate.optimizer == sum(m.nbytes for m in moments)
    assert estimate.gathered == 0


def test_layouts_divide_what_they_split():
    config = resolve_config("llama-125m")
    one = estimate_memory(config, 4, 1024)
    fsdp = estimate_memory(config, 4, 1024, Layout(data_parallel=4))
    ddp = estimate_memory(config, 4, 1024, Layout(data_parallel=4, sharded=False))
    tp = estimate_memory(config, 4, 1024, Layout(tensor_parallel=2))
    sp = estimate_memory(config, 4, 1024, Layout(tensor_parallel=2, sequence_parallel=True))
    pp = estimate_memory(config, 4, 1024, Layout(pipeline_parallel=2, microbatches=4))
    gpipe = estimate_memory(config, 4, 1024, Layout(pipeline_parallel=2, microbatches=4, schedule="gpipe"))
    recompute = estimate_memory(config, 4, 1024, Layout(activation_checkpointing=True))
    assert fsdp.model_states == pytest.approx(one.model_states / 4)
    assert ddp.model_states == one.model_states and ddp.gathered == one.weights  # gradient buckets
    assert one.model_states / 2 < tp.model_states < one.model_states  # norms and positions stay whole
    assert tp.activations < one.activations
    assert sp.model_states == tp.model_states and sp.activations < tp.activations
    assert sp.activations > one.activations / 2  # the head's input is gathered whole
    assert pp.parameters < one.parameters and gpipe.activations == 2 * pp.activations
    blocks_one = one.activations - recompute.activations
    assert blocks_one > 0.5 * one.activations and recompute.model_states == one.model_states


def test_the_table_and_the_command(capsys):
    rows = table().splitlines()
    assert len(rows) == 5 and rows[2].startswith("| gpt2-124m") and rows[4].startswith("| llama3-8b")
    main(["--arch", "llama3-8b", "--seq_len", "8192", "--data_parallel", "8", "--tensor_parallel", "2"])
    assert "GiB per process" in capsys.readouterr().out
