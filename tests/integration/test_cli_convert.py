"""`litllm convert` end to end: HF directory -> litllm -> generate -> HF directory."""

from __future__ import annotations

import json

import pytest
import torch

from litllm.cli import main

pytestmark = pytest.mark.integration
import transformers  # noqa: E402  (a dev dependency: CI installs it, so this test always runs)


def test_convert_both_ways_and_generate_from_the_converted_model(tmp_path, capsys, small_tokenizer):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=512, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    reference = transformers.GPT2LMHeadModel(config).eval()
    reference.save_pretrained(tmp_path / "hf")
    small_tokenizer.save(tmp_path / "hf")

    main(["convert", "from-hf", str(tmp_path / "hf"), str(tmp_path / "ours")])
    main(["generate", "--model_dir", str(tmp_path / "ours"), "--prompt", "ROMEO:", "--temperature", "0"])
    main(["convert", "to-hf", str(tmp_path / "ours"), str(tmp_path / "back"), "--dtype", "bfloat16"])
    out = capsys.readouterr().out
    assert "(litllm model directory)" in out and "(Hugging Face directory)" in out

    # greedy continuation from transformers on the same weights is what `litllm generate` printed
    ids = torch.tensor([small_tokenizer.encode("ROMEO:")])
    with torch.no_grad():
        hf_ids = reference.generate(ids, max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert "ROMEO:" + small_tokenizer.decode(hf_ids[0, ids.size(1) :].tolist()) in out

    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "back")
    assert back.dtype == torch.bfloat16
    assert json.loads((tmp_path / "back" / "config.json").read_text())["dtype"] == "bfloat16"


def test_convert_names_the_unsupported_field_in_one_line(tmp_path, capsys):
    (tmp_path / "hf").mkdir()
    config = {"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 16}
    config.update(num_hidden_layers=1, num_attention_heads=2, rope_scaling={"rope_type": "yarn", "factor": 8.0})
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        main(["convert", "from-hf", str(tmp_path / "hf"), str(tmp_path / "ours")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unsupported rope_scaling" in err


def test_finetune_starts_from_a_converted_model(tmp_path, small_tokenizer):
    """A Hugging Face Llama (GQA) converted in is a model directory the finetune verbs start from."""
    from pathlib import Path

    from litllm.model.model_dir import ModelDir

    repo = Path(__file__).resolve().parents[2]
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "hf")
    small_tokenizer.save(tmp_path / "hf")
    main(["convert", "from-hf", str(tmp_path / "hf"), str(tmp_path / "base")])
    root = tmp_path / "lora"
    main(
        [
            "finetune",
            "lora",
            "--config",
            str(repo / "recipes" / "sft_lora_tiny.yaml"),
            "--model.init_from",
            str(tmp_path / "base"),
            "--model.warmup_steps",
            "1",
            "--data.block_size",
            "128",
            "--data.max_length",
            "128",
            "--data.batch_size",
            "4",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.max_steps",
            "2",
            "--trainer.val_check_interval",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    tuned, _ = ModelDir(root / "final").load()
    base, _ = ModelDir(tmp_path / "base").load()
    assert tuned.config.n_kv_head == 2 and tuned.config.mlp == base.config.mlp
    changed = [n for n, p in tuned.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    # Only the LoRA targets (the blocks' linear layers, adapters merged in) moved; embeddings and norms did not.
    assert changed and all(".attn." in n or ".mlp." in n for n in changed)
    assert "wte.weight" not in changed
