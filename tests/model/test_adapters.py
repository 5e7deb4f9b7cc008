import copy

import pytest
import torch

from litllm.errors import ConfigError
from litllm.model.adapters import apply_lora, merge_lora, quantize_4bit, save_adapter, weight_bytes
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT


def model(name="tiny-llama", **kw) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig.from_name(name, **kw)).eval()


def nudge(peft_model) -> None:
    """Give the adapters non-zero weights (LoRA B starts at zero, which would make every test trivial)."""
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)


def test_lora_trainable_count_is_rank_times_shapes():
    base = model()
    c = base.config
    peft_model = apply_lora(base, r=4, alpha=8, dropout=0.0, targets=["qkv", "proj", "down"])
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    qkv_out = (c.n_head + 2 * c.n_kv_head) * c.head_dim
    per_block = 4 * (c.n_embd + qkv_out) + 4 * (c.n_head * c.head_dim + c.n_embd) + 4 * (c.intermediate_size + c.n_embd)
    assert trainable == c.n_layer * per_block
    total = sum(p.numel() for p in peft_model.parameters())
    assert trainable / total < 0.05


def test_unknown_target_names_the_existing_layers():
    with pytest.raises(ConfigError, match=r"\['q_proj'\].*\['down', 'gate', 'lm_head', 'proj', 'qkv', 'up'\]"):
        apply_lora(model(), 4, 8, 0.0, ["q_proj"])


@pytest.mark.parametrize(
    ("arch", "targets"),
    [
        ("tiny-llama", ["qkv", "proj", "up", "down", "gate"]),
        ("tiny-gpt2", ["qkv", "proj", "up", "down", "lm_head"]),  # biases, and a head tied to the embedding
    ],
)
def test_merged_lora_equals_adapter_model(arch, targets):
    peft_model = apply_lora(model(arch), 4, 8, 0.0, targets)
    nudge(peft_model)
    idx = torch.randint(0, 512, (2, 24))
    with torch.no_grad():
        with_adapter = peft_model(idx)
        merged = merge_lora(peft_model)
        torch.testing.assert_close(merged(idx), with_adapter, rtol=1e-4, atol=1e-5)
        assert type(merged) is GPT
        torch.testing.assert_close(peft_model(idx), with_adapter)  # merging did not touch the original
        if "lm_head" in targets:  # an adapted tied head is untied: the embedding keeps its trained value
            assert not merged.config.tie_embeddings
            torch.testing.assert_close(merged.wte.weight, peft_model.get_base_model().wte.weight)


def test_adapter_directory_loads_with_peft(tmp_path):
    from peft import PeftModel

    base = model()
    peft_model = apply_lora(copy.deepcopy(base), 4, 8, 0.0, ["qkv", "proj"])
    nudge(peft_model)
    save_adapter(peft_model, tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    idx = torch.randint(0, 512, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx), peft_model(idx))


def test_qlora_stores_base_in_4bit_and_merges_to_full_precision():
    full = model("tiny-llama", n_embd=256, intermediate_size=1024, vocab_size=64)  # matmul weights dominate
    quantized = quantize_4bit(copy.deepcopy(full))
    assert weight_bytes(full) / weight_bytes(quantized) >= 3.0
    idx = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        assert (quantized(idx) - full(idx)).abs().max() < 0.5  # NF4 is lossy but close
    peft_model = apply_lora(quantized, 4, 8, 0.0, ["qkv", "proj"])
    nudge(peft_model)
    with torch.no_grad():
        adapter_out = peft_model(idx)
        merged = merge_lora(peft_model, base=copy.deepcopy(full))
        assert next(merged.parameters()).dtype == torch.float32 and type(merged.blocks[0].attn.qkv) is torch.nn.Linear
        # the merged model uses the unquantized base: equal to the adapter model up to quantization error
        assert (merged(idx) - adapter_out).abs().max() < 0.5
        reference = apply_lora(copy.deepcopy(full), 4, 8, 0.0, ["qkv", "proj"])
        reference.load_state_dict({k: v for k, v in peft_model.state_dict().items() if "lora_" in k}, strict=False)
        torch.testing.assert_close(merged(idx), reference(idx), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama"])
def test_qlora_trains_the_same_after_a_validation_pass(arch):
    # bitsandbytes repacks 4-bit weights for an inference-only kernel at the first eval-mode forward on
    # CPUs with AVX512-BF16 (crash on GPT-2's biases, no gradient to earlier layers on Llama) unless told
    # not to; on other CPUs this checks the ordinary path.
    idx = torch.randint(0, 64, (2, 16))

    def lora_grads(validate_first: bool) -> dict[str, torch.Tensor]:
        peft_model = apply_lora(quantize_4bit(model(arch, vocab_size=64)), 4, 8, 0.0, ["qkv", "proj"])
        nudge(peft_model)
        if validate_first:
            peft_model.eval()
            with torch.no_grad():
                peft_model(idx)
        peft_model.train()
        logits = peft_model(idx)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), idx.flatten()).backward()
        return {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}

    before, after = lora_grads(False), lora_grads(True)
    assert before.keys() == after.keys() and any("blocks.0." in n and g.abs().sum() > 0 for n, g in before.items())
    for name in before:
        torch.testing.assert_close(after[name], before[name], msg=name)
