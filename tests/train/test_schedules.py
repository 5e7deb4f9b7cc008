"""Warmup-stable-decay: the learning rate at the steps where the schedule changes phase, for each shape."""

import math

import pytest

from litllm.train import PretrainModule
from litllm.train.optim import lr_schedule, warmup_stable_decay


@pytest.mark.parametrize(
    ("shape", "halfway"),
    [("linear", 0.5), ("cosine", 0.5), ("sqrt", 1 - math.sqrt(0.5))],
)
def test_wsd_warms_up_holds_the_peak_then_decays_in_its_shape(shape, halfway):
    # 100 steps, 10 of warmup, the last 20% (steps 80..100) decaying to 0.1 of the peak
    f = warmup_stable_decay(warmup_steps=10, total_steps=100, min_ratio=0.1, decay_fraction=0.2, decay_shape=shape)
    assert f(0) == pytest.approx(0.1) and f(4) == pytest.approx(0.5) and f(9) == pytest.approx(1.0)
    assert [f(s) for s in (10, 50, 79, 80)] == [1.0, 1.0, 1.0, 1.0]  # stable until the decay starts
    assert f(81) < 1.0
    assert f(90) == pytest.approx(0.1 + 0.9 * halfway)
    assert f(100) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)
    values = [f(s) for s in range(80, 101)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_wsd_shapes_differ_and_bad_settings_are_refused():
    at = {s: warmup_stable_decay(0, 100, 0.0, 0.5, s)(75) for s in ("linear", "cosine", "sqrt")}
    assert at["linear"] == pytest.approx(0.5) and at["cosine"] == pytest.approx(0.5)
    assert at["sqrt"] == pytest.approx(1 - math.sqrt(0.5))
    assert warmup_stable_decay(0, 100, 0.0, 0.5, "cosine")(60) > warmup_stable_decay(0, 100, 0.0, 0.5, "linear")(60)
    # A decay longer than the run after warmup starts when the warmup ends.
    short = warmup_stable_decay(10, 20, 0.0, 1.0, "linear")
    assert short(10) == pytest.approx(1.0) and short(15) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="decay_fraction"):
        warmup_stable_decay(10, 100, 0.1, 0.0)
    with pytest.raises(ValueError, match="decay_shape"):
        warmup_stable_decay(10, 100, 0.1, 0.2, "exp")
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_schedule("step", 10, 100, 0.1, 0.2, "linear")


def test_module_steps_the_wsd_schedule():
    module = PretrainModule(
        arch="tiny-gpt2", learning_rate=1e-3, warmup_steps=2, max_steps=10, lr_schedule="wsd", decay_fraction=0.5,
        decay_shape="linear", min_lr_ratio=0.0,
    )  # fmt: skip
    module.configure_model()
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 8e-4, 6e-4, 4e-4, 2e-4])
