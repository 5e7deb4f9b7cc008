"""Pipeline parallelism in one process: where the stages are cut, what a stage computes and names, the sizes,
the short names and the one-line refusals. (Training runs over processes: ``test_mesh_runs.py``.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from litllm.errors import ConfigError
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.parallel.pipeline import PipelineStageModule, model_stage_bounds, stage_bounds
from litllm.parallel.strategy import MeshStrategy, mesh_shape


def test_stages_are_balanced_by_parameter_count():
    # Equal blocks and no ends: as even as the blocks allow.
    assert stage_bounds([10] * 4, 0, 0, 2) == [(0, 2), (2, 4)]
    assert stage_bounds([10] * 6, 0, 0, 3) == [(0, 2), (2, 4), (4, 6)]
    # Heavy embeddings pull blocks off the first stage, a heavy head off the last.
    assert stage_bounds([10] * 6, 25, 0, 2) == [(0, 2), (2, 6)]
    assert stage_bounds([10] * 6, 0, 25, 2) == [(0, 4), (4, 6)]
    # Every stage gets a block, however large the ends.
    assert stage_bounds([1, 1, 1], 1000, 1000, 3) == [(0, 1), (1, 2), (2, 3)]
    # One huge block: the others share the rest of the stages.
    assert stage_bounds([1, 100, 1, 1], 0, 0, 2) == [(0, 2), (2, 4)]


def test_explicit_cut_points_and_their_one_line_refusals():
    assert stage_bounds([10] * 6, 0, 0, 3, cut_points=[1, 5]) == [(0, 1), (1, 5), (5, 6)]
    for bad in ([0, 3], [3, 3], [4, 2], [2, 6], [2]):
        with pytest.raises(ConfigError, match="must be 2 increasing block indices between 1 and n_layer - 1 = 5"):
            stage_bounds([10] * 6, 0, 0, 3, cut_points=bad)
    with pytest.raises(ConfigError, match="needs at least as many blocks as stages \\(n_layer=2\\)"):
        stage_bounds([10] * 2, 0, 0, 4)


def test_a_gpt2_model_is_cut_in_the_middle():
    with torch.device("meta"):  # shapes only
        model = GPT(ModelConfig.from_name("gpt2-124m"))
    assert model_stage_bounds(model, 2) == [(0, 6), (6, 12)]  # wte + wpe on one side, the (tied) head on the other
    # The tables are 5.5 blocks each: on 4 stages the ends keep one block, the middle stages five.
    four = model_stage_bounds(model, 4)
    assert four[0] == (0, 1) and four[-1] == (11, 12)


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("bounds", [[(0, 2), (2, 4)], [(0, 1), (1, 3), (3, 4)]])
def test_the_stages_chained_compute_the_whole_model_under_its_names(arch, bounds):
    config = ModelConfig.from_name(arch, n_layer=4)
    torch.manual_seed(0)
    model = GPT(config).eval()
    idx = torch.randint(0, config.vocab_size, (2, 16))
    want = model(idx)
    names = set(model.state_dict())
    stages = [PipelineStageModule(model, a, b, i == 0, i == len(bounds) - 1) for i, (a, b) in enumerate(bounds)]
    x = idx
    for stage in stages:
        x = stage(x)
    assert torch.equal(x, want)  # the same operations in the same order: the same bits
    got = [set(stage.state_dict()) for stage in stages]
    assert set().union(*got) == names and sum(len(g) for g in got) == len(names)  # each name on one stage
    for keys, (a, b) in zip(got, bounds):
        assert {k.split(".")[1] for k in keys if k.startswith("blocks.")} == {str(i) for i in range(a, b)}
    last = stages[-1]
    # A tied head becomes the last stage's own copy of the embedding matrix, decay-free like the embedding.
    assert last.tied_head == config.tie_embeddings
    if config.tie_embeddings:
        assert last.lm_head.weight is not model.wte.weight and torch.equal(last.lm_head.weight, model.wte.weight)
        assert last.embedding_weights() == [last.lm_head.weight]
    assert stages[0].embedding_weights()[0] is model.wte.weight


def test_mesh_sizes_with_a_pipeline():
    assert mesh_shape(2, "auto", "auto", 2) == (1, 1)
    assert mesh_shape(4, "auto", "auto", 2) == (2, 1)
    assert mesh_shape(8, 2, "auto", 4) == (2, 1)
    with pytest.raises(ConfigError, match="pipeline_parallel_size=2 does not fit the run's 3 process"):
        mesh_shape(3, "auto", "auto", 2)
    assert mesh_shape(4, "auto", 2, 2) == (1, 2)  # 3-D: tensor parallelism within each stage
    assert mesh_shape(8, "auto", 2, 2) == (2, 2)
    with pytest.raises(ConfigError, match="tensor_parallel_size=4 x pipeline_parallel_size=2 does not fit the run's 4"):
        mesh_shape(4, "auto", 4, 2)
    with pytest.raises(ConfigError, match="pipeline_parallel_size must be a positive integer"):
        mesh_shape(4, "auto", "auto", 0)


def test_the_pipeline_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="pipeline_schedule must be one of gpipe, 1f1b"):
        MeshStrategy(pipeline_parallel_size=2, pipeline_schedule="zb")
    with pytest.raises(ConfigError, match="1f1b needs at least as many micro-batches as stages"):
        MeshStrategy(pipeline_parallel_size=4, pipeline_microbatches=2)
    with pytest.raises(ConfigError, match="saves sharded checkpoints only"):
        MeshStrategy(pipeline_parallel_size=2, save_distributed_checkpoint=False)
    with pytest.raises(ConfigError, match="must give 1 block index"):
        MeshStrategy(pipeline_parallel_size=2, pipeline_cut_points=[1, 2])
    gpipe = MeshStrategy(pipeline_parallel_size=4, pipeline_schedule="gpipe", pipeline_microbatches=2)
    assert (gpipe.pipeline_microbatches, MeshStrategy(pipeline_parallel_size=2).pipeline_microbatches) == (2, 2)


def test_the_stages_of_a_pipeline_read_the_same_batches():
    from litllm.data.sampler import data_parallel_split

    # 2 pipelines of 2 stages on 4 processes: ranks 0, 1 hold stage 0, ranks 2, 3 stage 1; pipelines {0, 2}, {1, 3}.
    strategy = MeshStrategy(pipeline_parallel_size=2)
    for rank, replica in [(0, 0), (1, 1), (2, 0), (3, 1)]:
        strategy.cluster_environment = SimpleNamespace(world_size=lambda: 4, global_rank=lambda r=rank: r)
        assert (strategy.data_parallel_size, strategy.pipeline_parallel_size) == (2, 2)
        assert data_parallel_split(SimpleNamespace(strategy=strategy, global_rank=rank, world_size=4)) == (replica, 2)


def test_short_pipeline_names_are_registered():
    from lightning.pytorch.strategies import StrategyRegistry

    from litllm.parallel import register_strategies

    register_strategies()
    for name, pp in [("pp2", 2), ("pp4", 4)]:
        strategy = StrategyRegistry.get(name)
        assert isinstance(strategy, MeshStrategy) and strategy.pipeline_parallel_size == pp, name
        assert (strategy.pipeline_schedule, strategy.pipeline_microbatches) == ("1f1b", pp)


@pytest.mark.parametrize(
    ("module_args", "precision", "message"),
    [
        ({"optimizer": "muon"}, "32-true", "does not support model.optimizer=muon: use adamw"),
        ({"compile": True}, "32-true", "does not support model.compile=true"),
        ({}, "16-mixed", "does not support precision 16-mixed"),
    ],
)
def test_what_a_pipeline_does_not_train_is_refused_in_one_line(module_args, precision, message):
    from litllm.train import PretrainModule
    from litllm.train.pipelined import check_pipeline_support

    strategy = MeshStrategy(pipeline_parallel_size=2)
    check_pipeline_support(PretrainModule(arch="tiny-gpt2"), SimpleNamespace(strategy=strategy, precision="32-true"))
    trainer = SimpleNamespace(strategy=strategy, precision=precision)
    with pytest.raises(ConfigError, match=f"pipeline parallelism \\(pipeline_parallel_size=2\\) {message}"):
        check_pipeline_support(PretrainModule(arch="tiny-gpt2", **module_args), trainer)


def test_qlora_is_refused_and_lora_taken():
    from litllm.train import SFTModule
    from litllm.train.pipelined import check_pipeline_support

    trainer = SimpleNamespace(strategy=MeshStrategy(pipeline_parallel_size=2), precision="32-true")
    module = SFTModule(arch="tiny-gpt2", method="lora")
    check_pipeline_support(module, trainer, batch_size=4)
    module.hparams.method = "qlora"  # (a QLoRA module needs a model directory to start from; the check reads this)
    with pytest.raises(ConfigError, match="does not support model.method=qlora \\(a 4-bit base\\)"):
        check_pipeline_support(module, trainer)


def test_other_modules_and_odd_micro_batches_are_refused_in_one_line():
    from litllm.train import LLMModule, PretrainModule, SFTModule
    from litllm.train.pipelined import check_pipeline_support

    trainer = SimpleNamespace(strategy=MeshStrategy(pipeline_parallel_size=2), precision="32-true")
    # (The check reads only the module's class.)
    with pytest.raises(ConfigError, match="does not support LLMModule \\(PretrainModule, SFTModule and DPOModule"):
        check_pipeline_support(LLMModule.__new__(LLMModule), trainer)
    check_pipeline_support(SFTModule(arch="tiny-gpt2"), trainer, batch_size=4)  # full SFT: padded batches
    check_pipeline_support(PretrainModule(arch="tiny-gpt2"), trainer, batch_size=4)
    with pytest.raises(ConfigError, match="data.batch_size=3 with pipeline_microbatches=2: the micro-batches must"):
        check_pipeline_support(PretrainModule(arch="tiny-gpt2"), trainer, batch_size=3)
    # Without a pipeline nothing is checked.
    check_pipeline_support(SFTModule(arch="tiny-gpt2"), SimpleNamespace(strategy=MeshStrategy(), precision="16-mixed"))


def test_padded_batches_reach_the_pipeline_in_few_shapes():
    # The schedule keeps a stage (with receive buffers) per batch shape: finetuning batches, as long as
    # their longest example, are rounded up to a multiple of PAD_MULTIPLE within the context.
    from litllm.train import SFTModule
    from litllm.train.pipelined import PAD_MULTIPLE

    module = SFTModule(arch="tiny-gpt2", arch_overrides={"block_size": 100})  # no data contract: padded
    assert module.padded_labels
    shapes = set()
    for length in range(1, 101):
        ids, labels = torch.ones(2, length, dtype=torch.long), torch.ones(2, length, dtype=torch.long)
        padded_ids, padded_labels = module.pipeline_batch({"input_ids": ids, "labels": labels})
        assert torch.equal(padded_ids[:, :length], ids) and bool((padded_ids[:, length:] == 0).all())
        assert torch.equal(padded_labels[:, :length], labels) and bool((padded_labels[:, length:] == -100).all())
        shapes.add(padded_ids.size(1))
    assert shapes == {PAD_MULTIPLE, 100}  # 1-64 -> 64; 65-100 -> the context, not 128
