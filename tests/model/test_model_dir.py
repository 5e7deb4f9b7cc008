import pytest
import torch

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import load_model_dir, load_weights, save_model_dir


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama"])
def test_model_directory_round_trip(tmp_path, small_tokenizer, arch):
    model = GPT(ModelConfig.from_name(arch)).eval()
    save_model_dir(tmp_path / "m", model, small_tokenizer)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded, tok = load_model_dir(tmp_path / "m")
    idx = torch.randint(0, 512, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx), model(idx))
    assert tok.fingerprint() == small_tokenizer.fingerprint()
    if loaded.config.tie_embeddings:
        assert loaded.lm_head.weight is loaded.wte.weight


def test_shape_mismatch_names_the_tensor(tmp_path):
    save_model_dir(tmp_path / "m", GPT(ModelConfig.from_name("tiny-gpt2")))
    other = GPT(ModelConfig.from_name("tiny-gpt2", n_embd=32))
    with pytest.raises(CheckpointError, match=r"tensor 'wte.weight' has shape \(512, 64\).*expects \(512, 32\)"):
        load_weights(other, tmp_path / "m" / "model.safetensors")


def test_missing_file_is_named(tmp_path, small_tokenizer):
    save_model_dir(tmp_path / "m", GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    (tmp_path / "m" / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing tokenizer.json"):
        load_model_dir(tmp_path / "m")
