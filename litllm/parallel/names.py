"""Short strategy names for the command line: ``--trainer.strategy fsdp2``, ``tp2``, ``tp4``, ``tp8``, ``pp2``,
``pp4``, ``mesh``.

They are entries of Lightning's ``StrategyRegistry``, so they must be registered before the Trainer is
made: ``litllm fit|validate|test|finetune`` do so before LightningCLI parses (``litllm.train.cli``);
a script calls ``register_strategies()`` before ``L.Trainer(strategy="tp2")``.
"""

from __future__ import annotations

from litllm.errors import ConfigError

TENSOR_PARALLEL_SIZES = (2, 4, 8)
PIPELINE_PARALLEL_SIZES = (2, 4)


def strategy_names() -> dict[str, tuple[dict, str]]:
    """litllm's strategy names: the ``MeshStrategy`` arguments of each and what it does."""
    names = {
        "fsdp2": (
            {"tensor_parallel_size": 1},
            "FSDP2 over every process (each shards the model and reads its own data)",
        ),
        "mesh": ({}, "MeshStrategy with its defaults (FSDP2 over every process; set its sizes with class_path)"),
    }
    for n in TENSOR_PARALLEL_SIZES:
        names[f"tp{n}"] = (
            {"tensor_parallel_size": n},
            f"tensor parallelism over groups of {n} processes, FSDP2 across the groups",
        )
    for n in PIPELINE_PARALLEL_SIZES:
        names[f"pp{n}"] = (
            {"pipeline_parallel_size": n},
            f"pipeline parallelism over {n} stages (1F1B, {n} micro-batches per batch), FSDP2 across the pipelines",
        )
    return names


def register_strategies() -> None:
    """Add litllm's names to Lightning's ``StrategyRegistry`` (once; later calls do nothing)."""
    from lightning.pytorch.strategies import StrategyRegistry

    from litllm.parallel.strategy import MeshStrategy

    for name, (init_params, description) in strategy_names().items():
        if name not in StrategyRegistry:
            StrategyRegistry.register(name, MeshStrategy, description=description, **init_params)


def check_strategy_name(name: str) -> None:
    """One ``ConfigError`` line when ``name`` is no strategy Lightning knows (after ``register_strategies``)."""
    from lightning.pytorch.strategies import StrategyRegistry

    if name == "auto" or name in StrategyRegistry:
        return
    ours = ", ".join(strategy_names())
    raise ConfigError(
        f"trainer.strategy={name!r} is not a strategy name: litllm's are {ours}; Lightning's include ddp, "
        "ddp_spawn, deepspeed, fsdp (GPU only); or give a class, e.g. "
        "--trainer.strategy.class_path litllm.parallel.MeshStrategy --trainer.strategy.init_args.tensor_parallel_size 2"
    )
