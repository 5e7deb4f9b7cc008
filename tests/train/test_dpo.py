import math

import pytest
import torch

from litllm.data import LLMDataModule
from litllm.data.preference import PreferenceFields, pair_messages, split_pairs
from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir
from litllm.train import DPOModule
from litllm.train.dpo import preference_loss, sequence_logprobs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_tokenizer):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2", block_size=256))
    return ModelDir(tmp_path_factory.mktemp("m") / "model").save(model, small_tokenizer).path


@pytest.fixture(scope="module")
def batch(model_dir, tmp_path_factory):
    dm = LLMDataModule(
        mode="preference",
        train_data="preferences",
        tokenizer=str(model_dir),
        block_size=256,
        batch_size=4,
        cache_dir=str(tmp_path_factory.mktemp("c")),
    )
    dm.prepare_data()
    dm.setup("fit")
    return next(iter(dm.val_dataloader()))


def test_sequence_logprobs_sum_only_labelled_tokens():
    logits = torch.randn(1, 3, 5)
    labels = torch.tensor([[-100, 2, 4]])
    logp = torch.log_softmax(logits, -1)
    assert sequence_logprobs(logits, labels).item() == pytest.approx((logp[0, 1, 2] + logp[0, 2, 4]).item(), rel=1e-6)


def test_loss_matches_a_hand_computation():
    pc, pr, rc, rr = torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.5])
    beta = 0.5
    h = (-10.0 + 11.0) - (-12.0 + 11.5)  # 1.5
    loss, chosen, rejected = preference_loss(pc, pr, rc, rr, beta)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-beta * h))), rel=1e-6)
    assert (chosen.item(), rejected.item()) == pytest.approx((0.5, -0.25))
    ipo, _, _ = preference_loss(pc, pr, rc, rr, beta, "ipo")
    assert ipo.item() == pytest.approx((h - 1 / (2 * beta)) ** 2)
    cdpo, _, _ = preference_loss(pc, pr, rc, rr, beta, "cdpo", label_smoothing=0.1)
    sig = 1 / (1 + math.exp(-beta * h))
    assert cdpo.item() == pytest.approx(-0.9 * math.log(sig) - 0.1 * math.log(1 - sig), rel=1e-6)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_loss_is_ln2_when_policy_equals_reference(model_dir, batch, method):
    module = DPOModule(init_from=str(model_dir), method=method, beta=0.1)
    module.configure_model()
    with torch.no_grad():
        out = module.dpo_step(batch)
    assert out["loss"].item() == pytest.approx(math.log(2), abs=1e-5)
    assert out["reward_margin"].item() == pytest.approx(0.0, abs=1e-5)


def test_lora_dpo_keeps_one_copy_of_the_base(model_dir):
    full = DPOModule(init_from=str(model_dir), method="full")
    full.configure_model()
    lora = DPOModule(init_from=str(model_dir), method="lora")
    lora.configure_model()
    base = sum(p.numel() for p in GPT(ModelConfig.from_name("tiny-gpt2", block_size=256)).parameters())
    assert lora.reference_model is None
    assert sum(p.numel() for p in lora.parameters() if not p.requires_grad) == base
    assert sum(p.numel() for p in full.parameters()) == 2 * base  # policy + frozen reference


def test_reference_is_not_in_checkpoints(model_dir):
    module = DPOModule(init_from=str(model_dir), method="full")
    module.configure_model()
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and not any(k.startswith("reference_model") for k in checkpoint["state_dict"])


def test_dpo_needs_a_starting_model():
    with pytest.raises(ConfigError, match="model.init_from"):
        DPOModule(arch="tiny-gpt2")


def test_bad_pairs_are_rejected():
    fields = PreferenceFields()
    good = {"instruction": "Say hi", "input": "", "chosen": "Hi!", "rejected": "No."}
    chosen, rejected = pair_messages(good, fields)
    assert chosen[-1]["content"] == "Hi!" and rejected[-1]["content"] == "No." and chosen[:-1] == rejected[:-1]
    for bad, reason in [
        ({**good, "rejected": "Hi!"}, "identical"),
        ({**good, "chosen": " "}, "empty response"),
        ({k: v for k, v in good.items() if k != "rejected"}, "missing field 'rejected'"),
    ]:
        with pytest.raises(ValueError, match=reason):
            pair_messages(bad, fields)


def test_preference_batches_stack_chosen_over_rejected(batch):
    assert batch["input_ids"].size(0) == 8
    chosen_prompt = (batch["labels"][0] != -100).nonzero()[0].item()  # where the response starts
    assert chosen_prompt > 10  # the prompt of pair 0 is the same tokens in its chosen row (0) and rejected row (4)
    assert torch.equal(batch["input_ids"][0, :chosen_prompt], batch["input_ids"][4, :chosen_prompt])


def test_pair_order_gives_every_micro_batch_whole_pairs():
    from litllm.train.dpo import pair_order

    pairs, microbatches = 6, 3
    rows = torch.arange(2 * pairs)  # chosen rows 0-5, then their rejected rows 6-11
    for micro in rows[pair_order(pairs, microbatches)].chunk(microbatches):
        chosen, rejected = split_pairs(micro)
        assert (rejected == chosen + pairs).all() and len(chosen) == pairs // microbatches
    assert sorted(pair_order(pairs, microbatches).tolist()) == list(range(2 * pairs))
