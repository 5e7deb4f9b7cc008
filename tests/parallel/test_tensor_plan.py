"""The tensor-parallel plan in one process: the reordered qkv rows, local-head attention, sizes and names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.parallel.strategy import mesh_shape
from litllm.parallel.tensor import ROWS_ATTRIBUTE, canonical_qkv, check_divisible, qkv_rows

CONFIGS = {
    "gpt2": ModelConfig.from_name("tiny-gpt2"),  # biases, LayerNorm, learned positions, GELU
    "llama": ModelConfig.from_name("tiny-llama"),  # RoPE, GQA (4 query heads, 2 kv heads), RMSNorm, SwiGLU
    "qk-norm": ModelConfig.from_name("tiny-llama", qk_norm=True, n_kv_head=4),
}


def test_each_slice_of_the_reordered_qkv_rows_holds_the_q_k_v_of_its_heads():
    config = ModelConfig.from_name("tiny-gpt2", n_head=4, n_kv_head=2, n_embd=12)
    order = qkv_rows(config, 2)  # q: 4 heads x 3 = rows 0..11, k: 12..17, v: 18..23
    first, second = order.view(2, -1).tolist()
    assert first == [0, 1, 2, 3, 4, 5, 12, 13, 14, 18, 19, 20]  # heads 0-1, kv head 0
    assert second == [6, 7, 8, 9, 10, 11, 15, 16, 17, 21, 22, 23]
    assert sorted(order.tolist()) == list(range(24))


@pytest.mark.parametrize(("name", "tp"), [("gpt2", 2), ("gpt2", 4), ("llama", 2), ("qk-norm", 2), ("qk-norm", 4)])
def test_local_heads_of_all_ranks_add_up_to_the_full_block(name, tp):
    """What tensor parallelism computes, done by hand: each rank's block on its slice, partial sums added."""
    config = CONFIGS[name]
    torch.manual_seed(0)
    model = GPT(config).eval()
    block = model.blocks[0]
    x = torch.randn(2, 16, config.n_embd)
    rope = (model.rope_cos[:16], model.rope_sin[:16]) if config.position == "rope" else None
    with torch.no_grad():
        want_attn = block.attn(x, rope)
        want_mlp = block.mlp(x)
        got_attn = torch.zeros_like(want_attn)
        got_mlp = torch.zeros_like(want_mlp)
        order = qkv_rows(config, tp)
        qkv_w, qkv_b = block.attn.qkv.weight[order], None
        if block.attn.qkv.bias is not None:
            qkv_b = block.attn.qkv.bias[order]
        width = config.n_head * config.head_dim // tp
        hidden = config.intermediate_size // tp
        for rank in range(tp):
            local = GPT(config).blocks[0].eval()
            local.load_state_dict(block.state_dict())
            rows = slice(rank * len(order) // tp, (rank + 1) * len(order) // tp)
            local.attn.qkv = _linear(qkv_w[rows], None if qkv_b is None else qkv_b[rows])
            cols = slice(rank * width, (rank + 1) * width)
            local.attn.proj = _linear(block.attn.proj.weight[:, cols], _bias_once(block.attn.proj, rank))
            h = slice(rank * hidden, (rank + 1) * hidden)
            for part in ("gate", "up"):
                if hasattr(block.mlp, part):
                    full = getattr(block.mlp, part)
                    setattr(local.mlp, part, _linear(full.weight[h], None if full.bias is None else full.bias[h]))
            local.mlp.down = _linear(block.mlp.down.weight[:, h], _bias_once(block.mlp.down, rank))
            got_attn += local.attn(x, rope)
            got_mlp += local.mlp(x)
    torch.testing.assert_close(got_attn, want_attn, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_mlp, want_mlp, rtol=1e-5, atol=1e-6)


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.weight.data.copy_(weight)
    if bias is not None:
        layer.bias.data.copy_(bias)
    return layer


def _bias_once(layer: torch.nn.Linear, rank: int) -> torch.Tensor | None:
    """A row-parallel layer's bias is added once (by RowwiseParallel after the reduction): here by rank 0."""
    if layer.bias is None:
        return None
    return layer.bias if rank == 0 else torch.zeros_like(layer.bias)


def test_the_exported_state_dict_puts_the_rows_back():
    config = CONFIGS["gpt2"]
    torch.manual_seed(0)
    model = GPT(config)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    order = qkv_rows(config, 2)
    for block in model.blocks:
        block.attn.qkv.weight.data = block.attn.qkv.weight.data[order]
        block.attn.qkv.bias.data = block.attn.qkv.bias.data[order]
        setattr(block.attn.qkv, ROWS_ATTRIBUTE, order)
    reordered = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(reordered["blocks.0.attn.qkv.weight"], want["blocks.0.attn.qkv.weight"])
    got = canonical_qkv(model, reordered)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_heads_that_do_not_split_are_refused_in_one_line():
    check_divisible(CONFIGS["llama"], 2)
    with pytest.raises(ConfigError, match="tensor_parallel_size=4 does not divide n_kv_head=2"):
        check_divisible(CONFIGS["llama"], 4)
    with pytest.raises(ConfigError, match="tensor_parallel_size=3 does not divide n_head=4"):
        check_divisible(CONFIGS["gpt2"], 3)


def test_mesh_sizes():
    assert mesh_shape(4, "auto", "auto") == (4, 1)  # everything data parallel
    assert mesh_shape(4, "auto", 2) == (2, 2)
    assert mesh_shape(4, 4, "auto") == (4, 1)
    assert mesh_shape(8, 2, 4) == (2, 4)
    for dp, tp in [("auto", 3), (2, 1), (3, "auto"), (4, 2)]:
        with pytest.raises(ConfigError, match="product must equal"):
            mesh_shape(4, dp, tp)
    with pytest.raises(ConfigError, match="tensor_parallel_size must be a positive integer"):
        mesh_shape(4, "auto", 0)


def test_the_data_split_follows_the_strategy_s_replicas():
    from litllm.data.sampler import data_parallel_split
    from litllm.parallel.strategy import MeshStrategy

    assert data_parallel_split(None) == (0, 1)
    plain = SimpleNamespace(strategy=object(), global_rank=3, world_size=4)
    assert data_parallel_split(plain) == (3, 4)
    strategy = MeshStrategy(tensor_parallel_size=2)
    strategy.cluster_environment = SimpleNamespace(world_size=lambda: 4, global_rank=lambda: 3)
    assert (strategy.data_parallel_size, strategy.tensor_parallel_size) == (2, 2)
    assert data_parallel_split(SimpleNamespace(strategy=strategy, global_rank=3, world_size=4)) == (1, 2)
    assert strategy.distributed_sampler_kwargs == {"num_replicas": 2, "rank": 1}


def test_short_strategy_names_are_registered_and_an_unknown_one_is_named():
    from lightning.pytorch.strategies import StrategyRegistry

    from litllm.parallel import MeshStrategy, register_strategies
    from litllm.parallel.names import check_strategy_name

    register_strategies()
    register_strategies()  # a second call (the DDP launcher re-runs the command) changes nothing
    for name, tp in [("fsdp2", 1), ("tp2", 2), ("tp4", 4), ("tp8", 8)]:
        strategy = StrategyRegistry.get(name)
        assert isinstance(strategy, MeshStrategy) and strategy._requested == ("auto", tp), name
    assert StrategyRegistry.get("mesh")._requested == ("auto", "auto")
    check_strategy_name("ddp")
    check_strategy_name("auto")
    with pytest.raises(ConfigError, match="trainer.strategy='fsdp3' is not a strategy name: litllm's are fsdp2"):
        check_strategy_name("fsdp3")


def test_tensor_parallelism_refuses_a_qlora_model_in_one_line():
    from litllm.model.adapters import adapt
    from litllm.parallel.tensor import parallelize

    model = adapt(GPT(CONFIGS["gpt2"]), "qlora", 4, 8, 0.0, ["qkv"], "nf4", False)
    with pytest.raises(ConfigError, match="tensor parallelism \\(tensor_parallel_size=2\\) cannot split QLoRA's 4-bit"):
        parallelize(model, SimpleNamespace(size=lambda: 2))


def test_sequence_parallelism_refuses_an_adapted_head_in_one_line():
    from litllm.model.adapters import adapt
    from litllm.parallel.tensor import parallelize

    model = adapt(GPT(CONFIGS["gpt2"]), "lora", 4, 8, 0.0, ["qkv", "lm_head"], None, False)
    with pytest.raises(ConfigError, match="sequence_parallel cannot split a LoRA-adapted head"):
        parallelize(model, SimpleNamespace(size=lambda: 2), sequence_parallel=True)
