"""``litllm lr-find --config RECIPE.yaml``: a learning-rate range test on the recipe's own model and data.

A short run raises the learning rate exponentially from ``--min_lr`` to ``--max_lr`` over ``--num_steps``
optimizer steps (Lightning's learning-rate finder, on the same LightningModule and data module as ``fit``)
and records the loss at each. The suggestion is the rate where the loss falls fastest; it is printed as
the override to paste, and ``lr_find.png`` (loss against learning rate, the suggestion marked) goes to
the run's root directory. The model's weights are not kept: nothing is written but the plot.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from litllm.errors import ConfigError

SMOOTHING = 0.98
"""The momentum of the loss average Lightning's finder keeps (its ``_LRCallback.beta``)."""


def unbiased(smoothed: list[float], beta: float = SMOOTHING) -> list[float]:
    """Redo the finder's bias correction, which uses the step count after the update (one too many).

    Lightning divides the running average of step ``i`` by ``1 - beta ** (i + 2)`` instead of
    ``1 - beta ** (i + 1)``, which halves the first losses and draws a rise at the low-rate end that the
    steepest-descent suggestion then picks. The right factor is applied here.
    """
    return [s * (1 - beta ** (i + 2)) / (1 - beta ** (i + 1)) for i, s in enumerate(smoothed)]


def steepest_fall(lrs: list[float], losses: list[float]) -> int | None:
    """Index of the learning rate where the loss falls fastest per factor of learning rate, looking only
    below the rate of the lowest loss (past it the loss blows up). None if the loss never falls."""
    points = [(i, lr, loss) for i, (lr, loss) in enumerate(zip(lrs, losses)) if math.isfinite(loss) and lr > 0]
    if len(points) < 5:
        return None
    lowest = min(range(len(points)), key=lambda k: points[k][2])
    points = points[: lowest + 1]
    if len(points) < 3:
        return None
    slopes = [
        (points[k + 1][2] - points[k - 1][2]) / math.log(points[k + 1][1] / points[k - 1][1])
        for k in range(1, len(points) - 1)
    ]
    k = min(range(len(slopes)), key=slopes.__getitem__)
    return points[k + 1][0] if slopes[k] < 0 else None


def lr_find_main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="litllm lr-find",
        description="Learning-rate range test: every other option is a recipe option, as for litllm fit.",
    )
    parser.add_argument("--min_lr", type=float, default=1e-6, help="learning rate of the first step")
    parser.add_argument("--max_lr", type=float, default=1.0, help="learning rate of the last step")
    parser.add_argument("--num_steps", type=int, default=100, help="optimizer steps of the sweep")
    opts, recipe_args = parser.parse_known_args(args)
    if not 0 < opts.min_lr < opts.max_lr:
        raise ConfigError(f"--min_lr {opts.min_lr} and --max_lr {opts.max_lr}: need 0 < min_lr < max_lr")
    if opts.num_steps < 10:
        raise ConfigError(f"--num_steps {opts.num_steps}: a sweep needs at least 10 steps")

    from lightning.pytorch.tuner import Tuner

    from litllm.train.cli import one_line_config_errors, run_lightning

    with one_line_config_errors():
        cli = run_lightning(recipe_args, run=False)
    module, trainer = cli.model, cli.trainer
    if module.hparams.get("optimizer") == "muon":
        # Lightning's finder sets every group to one rate: Muon's and AdamW's would be swept as one.
        raise ConfigError("lr-find sweeps one learning rate; model.optimizer=muon has two: sweep with adamw")
    recipe_lr = module.hparams.learning_rate
    # The sweep is not a training run: no divergence guard (the loss is meant to blow up at the end),
    # no samples, no model directory.
    module.configure_callbacks = list
    result = Tuner(trainer).lr_find(
        module,
        datamodule=cli.datamodule,
        min_lr=opts.min_lr,
        max_lr=opts.max_lr,
        num_training=opts.num_steps,
        update_attr=False,
    )
    if result is None:  # not rank 0 of a multi-process run
        return
    result.results["loss"] = unbiased(result.results["loss"])
    index = steepest_fall(result.results["lr"], result.results["loss"])
    suggestion = None if index is None else result.results["lr"][index]
    if suggestion is None or not math.isfinite(suggestion):
        raise ConfigError(
            f"the sweep from {opts.min_lr:g} to {opts.max_lr:g} found no falling stretch of the loss; "
            "widen it (--min_lr, --max_lr) or run more steps (--num_steps)"
        )
    figure = result.plot(suggest=False)  # Lightning's own suggestion would be marked otherwise
    axes = figure.axes[0]
    axes.plot([suggestion], [result.results["loss"][index]], "o", color="red", markersize=9, label="steepest fall")
    axes.axvline(recipe_lr, color="gray", linestyle="--", linewidth=1, label="the recipe's rate")
    axes.legend()
    axes.set_title(f"{opts.num_steps}-step sweep; suggested {suggestion:.2e} (recipe: {recipe_lr:.2e})")
    out = Path(trainer.default_root_dir) / "lr_find.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    print(f"Loss against learning rate: {out}")
    print(f"Suggested learning rate {suggestion:.2e} (the recipe has {recipe_lr:.2e}); to use it:")
    print(f"  --model.learning_rate {suggestion:.2e}")
