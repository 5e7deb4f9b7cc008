import pytest
import torch

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.model.model_dir import ModelDir


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama"])
def test_model_directory_round_trip(tmp_path, small_tokenizer, arch):
    model = GPT(ModelConfig.from_name(arch)).eval()
    ModelDir(tmp_path / "m").save(model, small_tokenizer)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded, tok = ModelDir(tmp_path / "m").load()
    idx = torch.randint(0, 512, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx), model(idx))
    assert tok.fingerprint() == small_tokenizer.fingerprint()
    if loaded.config.tie_embeddings:
        assert loaded.lm_head.weight is loaded.wte.weight


def test_shape_mismatch_names_the_tensor(tmp_path):
    ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")))
    other = GPT(ModelConfig.from_name("tiny-gpt2", n_embd=32))
    with pytest.raises(CheckpointError, match=r"tensor 'wte.weight' has shape \(512, 64\).*expects \(512, 32\)"):
        ModelDir(tmp_path / "m").load_weights(other)


def test_missing_file_is_named(tmp_path, small_tokenizer):
    ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    (tmp_path / "m" / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing tokenizer.json"):
        ModelDir(tmp_path / "m").load()


def test_non_finite_weights_are_refused_by_name(tmp_path, small_tokenizer):
    from safetensors.torch import load_file, save_file

    model = GPT(ModelConfig.from_name("tiny-gpt2"))
    with torch.no_grad():
        model.blocks[0].attn.qkv.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"not writing .*: weight 'blocks.0.attn.qkv.weight' holds NaN"):
        ModelDir(tmp_path / "m").save(model, small_tokenizer)
    assert not (tmp_path / "m").exists()  # nothing half-written either
    # A directory written by something else with NaN weights is refused on loading, naming the tensor.
    ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    state["blocks.0.attn.qkv.weight"][0, 0] = float("inf")
    save_file(state, weights)
    with pytest.raises(CheckpointError, match=r"tensor 'blocks.0.attn.qkv.weight' holds NaN or infinite"):
        ModelDir(tmp_path / "m").load()


def test_truncated_weights_are_one_error_naming_the_file(tmp_path, small_tokenizer):
    ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")), small_tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors file"):
        ModelDir(tmp_path / "m").load()


def test_template_and_config_round_trip(tmp_path):
    from litllm.model.templates import get_template

    directory = ModelDir(tmp_path / "m")
    assert directory.template() is None
    directory.save_template(get_template("chatml"))
    assert directory.template().name == "chatml"
    (tmp_path / "m" / "template.json").write_text("not json")
    with pytest.raises(CheckpointError, match="template.json: not a template file"):
        directory.template()


def test_save_leaves_no_temporary_file(tmp_path):
    ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-llama")))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]


def test_weights_get_the_same_permissions_as_the_other_files(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        ModelDir(tmp_path / "m").save(GPT(ModelConfig.from_name("tiny-gpt2")))
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()}
    assert modes == {"model.safetensors": 0o644, "config.json": 0o644}
