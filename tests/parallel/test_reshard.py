"""Reading a checkpoint of any layout whole (``litllm.parallel.reshard``), without the processes that saved it.

The runs that resume under other layouts are in ``test_mesh_runs.py``; here, the parts: the optimizer
state's three forms read to one, the qkv rows of a tensor-parallel checkpoint put back in the model's
order, an adapter checkpoint's trainable tensors loaded alone, a checkpoint item that would run code
refused, and the one-line refusals.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.distributed.checkpoint import save

from litllm.errors import CheckpointError
from litllm.model.config import ModelConfig
from litllm.parallel import stored
from litllm.parallel.reshard import OPTIMIZER_PARAMETERS, AnyLayoutResume, load_optimizer, load_whole, read_whole
from litllm.parallel.tensor import qkv_rows


def tiny_config() -> ModelConfig:
    """GQA (more query heads than key/value heads) and a tied head."""
    return ModelConfig.from_dict({**ModelConfig.from_name("tiny-llama").to_dict(), "tie_embeddings": True})


def adam_state(rows: torch.Tensor) -> dict:
    return {"step": torch.tensor(3.0), "exp_avg": rows.clone(), "exp_avg_sq": rows.clone() + 1}


SETTINGS = {"lr": 0.01, "betas": (0.9, 0.95), "weight_decay": 0.1}


def write_sharded(path, state_dict: dict, optimizer: dict, tensor_parallel_size: int) -> None:
    """A sharded checkpoint directory as one process would write it (``meta.pt`` beside the tensors)."""
    save({"state_dict": state_dict, "optimizer_0": optimizer}, checkpoint_id=str(path), no_dist=True)
    meta = {"global_step": 3, "tensor_parallel_size": tensor_parallel_size, "pipeline_parallel_size": 1}
    torch.save({**meta, "litllm": {"model_config": tiny_config().to_dict()}}, path / "meta.pt")


def test_tensor_parallel_rows_nested_form_and_a_tied_head_read_to_the_model_layout(tmp_path):
    config = tiny_config()
    assert config.n_kv_head < config.n_head
    rows = config.n_head * config.head_dim + 2 * config.n_kv_head * config.head_dim
    qkv = torch.arange(rows * 2, dtype=torch.float32).view(rows, 2)  # row i holds 2i, 2i + 1
    saved_order = qkv_rows(config, 2)
    state = {"model.blocks.0.attn.qkv.weight": qkv[saved_order], "model.wte.weight": torch.ones(3, 2)}
    names = list(state)
    optimizer = {  # the nested form: the settings per group, the group's parameter names under "params"
        "state": {name: adam_state(tensor) for name, tensor in state.items()},
        "param_groups": [{**SETTINGS, "params": names}],
    }
    write_sharded(tmp_path, state, optimizer, tensor_parallel_size=2)

    whole = read_whole(tmp_path)
    assert torch.equal(whole["state_dict"]["model.blocks.0.attn.qkv.weight"], qkv)  # the model's own order
    named = whole["optimizer_states"][0]
    assert torch.equal(named["state"]["model.blocks.0.attn.qkv.weight"]["exp_avg"], qkv)
    assert torch.equal(named["state"]["model.blocks.0.attn.qkv.weight"]["exp_avg_sq"], qkv + 1)
    assert float(named["state"]["model.wte.weight"]["step"]) == 3.0
    assert named["groups"]["model.wte.weight"] == SETTINGS
    # The tied head (a pipeline's last stage keeps a copy of it) reads as the embedding.
    assert torch.equal(whole["state_dict"]["model.lm_head.weight"], torch.ones(3, 2))
    assert named["state"]["model.lm_head.weight"] is named["state"]["model.wte.weight"]
    assert whole["global_step"] == 3


def test_a_file_checkpoint_is_read_by_the_recorded_parameter_names_and_loads_into_an_optimizer(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    # Groups in another order than the parameters': the position in the optimizer says nothing by itself.
    groups = [{"params": [model[1].weight, model[0].weight], "weight_decay": 0.1}, {"params": [model[0].bias]}]
    optimizer = torch.optim.AdamW(groups, lr=0.01)
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    names = [["1.weight", "0.weight"], ["0.bias"]]
    torch.save({"state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()]}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="does not record which parameter each optimizer state belongs to"):
        read_whole(tmp_path / "a.ckpt")
    torch.save(
        {"state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()], OPTIMIZER_PARAMETERS: [names]},
        tmp_path / "b.ckpt",
    )
    named = read_whole(tmp_path / "b.ckpt")["optimizer_states"][0]
    assert torch.equal(named["state"]["0.weight"]["exp_avg"], optimizer.state[model[0].weight]["exp_avg"])
    assert named["groups"]["1.weight"]["weight_decay"] == 0.1 and named["groups"]["0.bias"]["weight_decay"] == 0.01

    # Into a fresh optimizer of the same model whose groups list the parameters in the model's order.
    fresh = torch.optim.AdamW(
        [{"params": [model[0].weight, model[1].weight], "weight_decay": 0.1}, {"params": [model[0].bias]}], lr=0.5
    )
    load_optimizer(model, fresh, named)
    for p in (model[0].weight, model[1].weight, model[0].bias):
        assert torch.equal(fresh.state[p]["exp_avg_sq"], optimizer.state[p]["exp_avg_sq"])
    assert fresh.param_groups[0]["lr"] == 0.01  # the saved learning rate (the schedule's), not the new one


class Code:
    """An object whose unpickling would import and call code."""


def test_a_checkpoint_item_that_would_run_code_is_refused(tmp_path):
    save(
        {"state_dict": {"w": torch.ones(2)}, "optimizer_0": {"param_groups": [{"hook": Code()}]}},
        checkpoint_id=str(tmp_path),
        no_dist=True,
    )
    torch.save({"global_step": 1}, tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match="would run code when loaded, which litllm never does"):
        read_whole(tmp_path)


def test_an_adapter_checkpoint_loads_what_trains_and_names_what_is_missing():
    """LoRA, QLoRA and DPO checkpoints hold the trainable tensors only (``strict_loading`` off): the frozen
    base (or DPO's reference) stays as model.init_from loaded it; a trainable tensor the checkpoint lacks is
    named."""
    module = torch.nn.ModuleDict({"base": torch.nn.Linear(3, 3), "adapter": torch.nn.Linear(3, 2)})
    module.strict_loading = False
    module.base.requires_grad_(False)
    base = {k: v.clone() for k, v in module.base.state_dict().items()}
    saved = {"adapter.weight": torch.full((2, 3), 0.5), "adapter.bias": torch.ones(2)}
    load_whole(module, [], {"state_dict": dict(saved), "optimizer_states": []}, tensor_parallel_size=1)
    torch.testing.assert_close(module.adapter.weight.detach(), saved["adapter.weight"])
    torch.testing.assert_close(module.base.weight.detach(), base["weight"])
    del saved["adapter.bias"]
    with pytest.raises(CheckpointError, match="no tensor 'adapter.bias' \\(1 missing\\): another model"):
        load_whole(module, [], {"state_dict": saved, "optimizer_states": []}, tensor_parallel_size=1)


def test_an_index_that_would_run_code_and_a_sharded_run_s_one_file_are_refused(tmp_path):
    import pickle

    from lightning.pytorch.plugins.io import TorchCheckpointIO

    from litllm.parallel.reshard import _ReadsShardedCheckpoints

    save({"state_dict": {"w": torch.ones(2)}}, checkpoint_id=str(tmp_path), no_dist=True)
    torch.save({"global_step": 1}, tmp_path / "meta.pt")
    assert read_whole(tmp_path)["state_dict"]["w"].tolist() == [1.0, 1.0]  # PyTorch's own index reads
    (tmp_path / ".metadata").write_bytes(pickle.dumps({"index": Code()}))
    with pytest.raises(CheckpointError, match="the checkpoint's .metadata names .*Code: loading it could run code"):
        read_whole(tmp_path)

    # One file saved under tensor parallelism (save_distributed_checkpoint=False): its qkv rows are in the
    # group's order, so one process or DDP refuses it rather than loading scrambled heads.
    torch.save({"state_dict": {}, "tensor_parallel_size": 2, "pipeline_parallel_size": 1}, tmp_path / "tp.ckpt")
    reader = _ReadsShardedCheckpoints(TorchCheckpointIO(), SimpleNamespace(hparams={}))
    with pytest.raises(CheckpointError, match="resumes only under that layout"):
        reader.load_checkpoint(tmp_path / "tp.ckpt")


def test_a_compiled_model_s_names_read_as_plain_ones(tmp_path):
    state = {"model._orig_mod.wte.weight": torch.ones(3, 2)}
    optimizer = {"state": {0: adam_state(torch.ones(3, 2))}, "param_groups": [{**SETTINGS, "params": [0]}]}
    names = [[["model._orig_mod.wte.weight"]]]
    torch.save({"state_dict": state, "optimizer_states": [optimizer], OPTIMIZER_PARAMETERS: names}, tmp_path / "c.ckpt")
    whole = read_whole(tmp_path / "c.ckpt")
    assert list(whole["state_dict"]) == ["model.wte.weight"]  # as PyTorch's distributed state dicts name it
    assert list(whole["optimizer_states"][0]["state"]) == ["model.wte.weight"]


def test_an_empty_parameter_group_of_an_earlier_checkpoint_is_dropped_on_resume():
    """litllm kept LoRA's empty no-decay group before; the optimizers have no such group now (PyTorch's
    distributed state dicts cannot hold one): an earlier checkpoint still resumes."""
    groups = [{**SETTINGS, "params": [0, 1]}, {**SETTINGS, "weight_decay": 0.0, "params": []}]
    checkpoint = {"optimizer_states": [{"state": {0: adam_state(torch.ones(2))}, "param_groups": groups}]}
    AnyLayoutResume().on_load_checkpoint(SimpleNamespace(strategy=None), None, checkpoint)
    assert checkpoint["optimizer_states"][0]["param_groups"] == [groups[0]]


def test_a_lazy_read_reads_each_tensor_a_process_holds_once_and_no_other(tmp_path, monkeypatch):
    """Resuming under another layout, a process reads whole only the tensors it holds a part of, one at a
    time (a pipeline stage: its own stage's), their rows put in order without reading them first."""
    monkeypatch.setattr(stored, "READ_AT_ONCE_NUMEL", 0)  # every tensor left on disk until needed
    config = tiny_config()
    rows = config.n_head * config.head_dim + 2 * config.n_kv_head * config.head_dim
    qkv = torch.arange(rows * 2, dtype=torch.float32).view(rows, 2)
    qkv_layer = torch.nn.Linear(2, rows, bias=False)  # a stage holding block 0's qkv only
    attn = torch.nn.ModuleDict({"attn": torch.nn.ModuleDict({"qkv": qkv_layer})})
    stage = torch.nn.ModuleDict({"blocks": torch.nn.ModuleDict({"0": attn})})
    adam = torch.optim.AdamW(stage.parameters(), **SETTINGS)
    settings = {k: v for k, v in adam.param_groups[0].items() if k != "params"}
    state = {"blocks.0.attn.qkv.weight": qkv[qkv_rows(config, 2)], "blocks.1.mlp.fc.weight": torch.ones(4, 3)}
    optimizer = {
        "state": {n: adam_state(t) for n, t in state.items()},
        "param_groups": [{**settings, "params": list(state)}],
    }
    write_sharded(tmp_path, state, optimizer, tensor_parallel_size=2)
    read, original = [], stored.StoredTensor.read
    monkeypatch.setattr(stored.StoredTensor, "read", lambda self: read.append(self.key) or original(self))

    whole = read_whole(tmp_path, lazy=True)
    assert read == [] and isinstance(whole["state_dict"]["blocks.0.attn.qkv.weight"], stored.StoredTensor)
    load_whole(stage, [adam], whole, tensor_parallel_size=1)
    assert torch.equal(qkv_layer.weight.detach(), qkv)  # the model's row order
    assert torch.equal(adam.state[qkv_layer.weight]["exp_avg_sq"], qkv + 1)
    assert sorted(read) == sorted(set(read)) and all("blocks.0.attn.qkv.weight" in key for key in read)
    assert len(read) == 4  # the weight, and its step, exp_avg and exp_avg_sq
    # Into a tensor-parallel size's order (here the saved one's): the row orders composed, read once, as eagerly.
    for lazy in (True, False):
        qkv_layer.weight.data.zero_()
        adam = torch.optim.AdamW(stage.parameters(), **SETTINGS)
        load_whole(stage, [adam], read_whole(tmp_path, lazy=lazy), tensor_parallel_size=2)
        assert torch.equal(qkv_layer.weight.detach(), qkv[qkv_rows(config, 2)]), lazy
        assert torch.equal(adam.state[qkv_layer.weight]["exp_avg"], qkv[qkv_rows(config, 2)]), lazy
