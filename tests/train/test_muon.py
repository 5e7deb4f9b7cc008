"""Muon with AdamW as one optimizer: which tensors each trains, the schedule on both, a state that
round-trips, and a tiny model that learns."""

import pytest
import torch
import torch.nn.functional as F

from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.train import PretrainModule
from litllm.train.muon import Float32Muon, MuonWithAdamW, orthogonalize


def names_of(model, params):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for p in params}


@pytest.mark.parametrize(
    ("preset", "overrides", "mlp"),
    [
        ("tiny-gpt2", {"tie_embeddings": False}, ["up", "down"]),
        ("tiny-gpt2", {}, ["up", "down"]),
        ("tiny-llama", {"qk_norm": True}, ["gate", "up", "down"]),
    ],
)
def test_muon_trains_the_block_matrices_and_adamw_the_rest(preset, overrides, mlp):
    model = GPT(ModelConfig.from_name(preset, **overrides))
    opt = MuonWithAdamW(model, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, muon_lr=0.02)
    muon = names_of(model, [p for g in opt.muon.param_groups for p in g["params"]])
    adamw = names_of(model, [p for g in opt.adamw.param_groups for p in g["params"]])
    wanted = {f"blocks.{i}.{m}.weight" for i in range(2) for m in ["attn.qkv", "attn.proj"] + [f"mlp.{x}" for x in mlp]}
    assert muon == wanted
    assert not muon & adamw and muon | adamw == {n for n, _ in model.named_parameters()}
    assert "wte.weight" in adamw and "norm.weight" in adamw and "blocks.1.norm_2.weight" in adamw
    assert ("lm_head.weight" in adamw) == (not model.config.tie_embeddings)
    if preset == "tiny-gpt2":
        assert {"wpe.weight", "blocks.0.attn.qkv.bias", "blocks.0.mlp.down.bias"} <= adamw
    else:
        assert {"blocks.0.attn.q_norm.weight", "blocks.0.attn.k_norm.weight"} <= adamw
    # One optimizer to Lightning: AdamW's groups first, then Muon's, the very dicts each one steps with.
    assert opt.param_groups == opt.adamw.param_groups + opt.muon.param_groups
    assert all(a is b for a, b in zip(opt.param_groups, opt.adamw.param_groups + opt.muon.param_groups))


def test_schedule_scales_both_learning_rates_and_state_round_trips():
    module = PretrainModule(
        arch="tiny-llama", optimizer="muon", learning_rate=1e-3, muon_lr=0.02, warmup_steps=4, max_steps=20
    )
    module.configure_model()
    config = module.configure_optimizers()
    opt, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(opt, MuonWithAdamW)
    assert opt.adamw.param_groups[0]["lr"] == pytest.approx(1e-3 / 4)
    assert opt.muon.param_groups[0]["lr"] == pytest.approx(0.02 / 4)
    x = torch.randint(0, 512, (2, 16))
    for _ in range(3):
        module.model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        scheduler.step()
    assert opt.adamw.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert opt.muon.param_groups[0]["lr"] == pytest.approx(0.02)
    first = next(p for g in opt.muon.param_groups for p in g["params"])
    assert "momentum_buffer" in opt.state[first] and opt.muon.state is opt.state is opt.adamw.state
    saved = opt.state_dict()
    twin = MuonWithAdamW(module.model, lr=1.0, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    twin.load_state_dict(saved)
    assert twin.muon.param_groups[0]["lr"] == pytest.approx(0.02) and twin.muon.state is twin.state
    assert torch.equal(twin.muon.state[first]["momentum_buffer"], opt.state[first]["momentum_buffer"])
    assert twin.muon.param_groups[0]["params"][0] is first


def test_tiny_model_learns_with_muon():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", vocab_size=64, n_layer=2, n_embd=64))
    opt = MuonWithAdamW(model, lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, muon_lr=0.02)
    data = torch.randint(0, 64, (8, 33))
    losses = []
    for _ in range(40):
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_muon_refuses_adapters():
    module = PretrainModule(arch="tiny-gpt2", optimizer="muon", method="lora", max_steps=10)
    module.configure_model()
    with pytest.raises(ConfigError, match="muon trains full weights"):
        module.configure_optimizers()


def test_muon_refuses_sharded_matrices():
    module = PretrainModule(arch="tiny-gpt2", optimizer="muon", max_steps=10)
    module.configure_model()
    module._device_mesh = object()  # what ModelParallelStrategy (FSDP2) sets
    with pytest.raises(ConfigError, match="FSDP shards"):
        module.configure_optimizers()


def test_float32_muon_steps_as_torch_muon_up_to_bfloat16_rounding():
    """The CPU path: the same momentum, learning-rate scaling and decay as torch.optim.Muon, its
    orthogonalisation in float32 (torch's is bfloat16: the two agree to bf16's ~3 significant digits)."""
    torch.manual_seed(0)
    start = [torch.randn(48, 16), torch.randn(16, 48)]  # tall and wide: both sides of the transpose
    grads = [[torch.randn_like(w) for w in start] for _ in range(3)]
    results = []
    for kind in (torch.optim.Muon, Float32Muon):
        params = [torch.nn.Parameter(w.clone()) for w in start]
        optimizer = kind(params, lr=0.02, momentum=0.95, weight_decay=0.1)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            optimizer.step()
        buffers = [optimizer.state[p]["momentum_buffer"] for p in params]
        results.append(([p.detach() for p in params], buffers))
    (torch_params, torch_buffers), (ours, our_buffers) = results
    for a, b in zip(torch_buffers, our_buffers):
        assert torch.equal(a, b)  # the momentum is computed identically
    for w, a, b in zip(start, torch_params, ours):
        moved_torch, moved_ours = a - w, b - w
        assert not torch.equal(moved_torch, moved_ours)  # a different precision really is used
        assert (moved_torch - moved_ours).norm() / moved_ours.norm() < 2e-2


def test_orthogonalize_keeps_the_singular_vectors_and_flattens_the_values():
    torch.manual_seed(0)
    matrix = torch.randn(32, 12) @ torch.diag(torch.logspace(-2, 1, 12))  # badly conditioned
    u, _, vt = torch.linalg.svd(matrix, full_matrices=False)
    out = orthogonalize(matrix, (3.4445, -4.775, 2.0315), 5, 1e-7)
    assert out.dtype == torch.float32 and out.shape == matrix.shape
    flattened = torch.diag(u.T @ out @ vt.T)  # what each singular direction of the input became
    assert torch.allclose(u @ torch.diag(flattened) @ vt, out, atol=1e-4)  # the same directions, U V^T's
    assert flattened.max() < 1.25 and flattened[:6].min() > 0.6  # the large ones end near 1 (spread 1000x before)
