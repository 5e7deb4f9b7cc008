"""The data contract: what a set-up data module promises the training modules, and the DPO batch layout."""

import math

import pytest
import torch

from litllm.data import LLMDataModule
from litllm.data.contract import DataContract, next_token_sample
from litllm.data.preference import split_pairs, stack_pairs
from litllm.train import PretrainModule


def ready(**kwargs) -> LLMDataModule:
    dm = LLMDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_text_blocks_have_no_padded_labels(tmp_path, small_tokenizer):
    dm = ready(tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path), block_size=32)
    contract = dm.contract
    assert contract.layout == "blocks" and not contract.padded_labels
    assert contract.tokenizer.fingerprint() == small_tokenizer.fingerprint()
    assert contract.template is None and contract.added_tokens == ()
    assert contract.block_size == 32 and contract.val_bytes_per_token > 1 and contract.unigram_loss > 0
    assert dm.bits_per_byte(2.0) == contract.bits_per_byte(2.0)


@pytest.mark.parametrize(
    ("mode", "data", "layout"), [("sft", "instructions", "padded"), ("preference", "preferences", "pairs")]
)
def test_record_data_has_padded_labels_and_its_template(tmp_path, small_tokenizer, mode, data, layout):
    dm = ready(mode=mode, train_data=data, tokenizer=str(small_tokenizer.path), cache_dir=str(tmp_path))
    contract = dm.contract
    assert contract.layout == layout and contract.padded_labels
    assert contract.template.name == "alpaca" and contract.added_tokens == ()  # alpaca needs no special tokens
    assert contract.vocab_size == small_tokenizer.vocab_size and contract.val_bytes_per_token is None
    assert math.isnan(contract.bits_per_byte(2.0))


def test_template_tokens_are_added_explicitly_and_reported(tmp_path, small_tokenizer):
    dm = ready(
        mode="sft",
        train_data="instructions",
        template="chatml",
        tokenizer=str(small_tokenizer.path),
        cache_dir=str(tmp_path),
    )
    contract = dm.contract
    assert contract.added_tokens == ("<|im_start|>", "<|im_end|>")
    assert contract.vocab_size == small_tokenizer.vocab_size + 2  # the vocabulary the model needs
    assert contract.tokenizer.backend.token_to_id("<|im_end|>") == small_tokenizer.vocab_size + 1


def test_contract_is_known_after_setup_only():
    with pytest.raises(RuntimeError, match="after setup"):
        LLMDataModule().contract  # noqa: B018
    assert math.isnan(LLMDataModule().bits_per_byte(1.0))


def test_a_module_without_a_data_module_assumes_padded_labels():
    module = PretrainModule(arch="tiny-gpt2")
    assert module.data_contract is None and module.padded_labels


def test_bits_per_byte(small_tokenizer):
    contract = DataContract(small_tokenizer, 16, val_bytes_per_token=4.0)
    assert contract.bits_per_byte(math.log(2) * 8) == pytest.approx(2.0)


def test_next_token_sample_shifts_ids_and_labels():
    ids, labels = torch.tensor([5, 6, 7, 8]), torch.tensor([-100, -100, 7, 8])
    plain = next_token_sample(ids)
    assert plain["input_ids"].tolist() == [5, 6, 7] and plain["labels"].tolist() == [6, 7, 8]
    sample = next_token_sample(ids, labels)
    assert sample["input_ids"].tolist() == [5, 6, 7] and sample["labels"].tolist() == [-100, 7, 8]


def test_split_pairs_inverts_stack_pairs():
    def item(chosen: list[int], rejected: list[int]) -> dict[str, torch.Tensor]:
        c, r = torch.tensor(chosen), torch.tensor(rejected)
        return {"chosen_input_ids": c, "chosen_labels": c, "rejected_input_ids": r, "rejected_labels": r}

    batch = stack_pairs(pad_id=0)([item([1, 2], [3]), item([4], [5, 6, 7])])
    assert batch["input_ids"].tolist() == [[1, 2, 0], [4, 0, 0], [3, 0, 0], [5, 6, 7]]
    chosen, rejected = split_pairs(batch["input_ids"])
    assert chosen.tolist() == [[1, 2, 0], [4, 0, 0]] and rejected.tolist() == [[3, 0, 0], [5, 6, 7]]
    assert batch["labels"][1].tolist() == [4, -100, -100]  # padding carries no loss
    with pytest.raises(ValueError, match="even number of rows"):
        split_pairs(torch.zeros(3, 2))
