import math

from litllm.train.lr_find import SMOOTHING, steepest_fall, unbiased


def test_steepest_fall_is_found_below_the_blow_up():
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]
    # a loss that falls around 1e-3 and explodes past 0.3
    losses = [7.6 - 1 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + (50 * lr if lr > 0.3 else 0) for lr in lrs]
    index = steepest_fall(lrs, losses)
    assert 5e-4 < lrs[index] < 2e-3


def test_no_fall_no_suggestion():
    lrs = [10 ** (-6 + i / 10) for i in range(30)]
    assert steepest_fall(lrs, [5.0 + i for i in range(30)]) is None


def test_unbiased_undoes_the_off_by_one_correction():
    raw = [7.6] * 20
    avg, smoothed = 0.0, []
    for i, loss in enumerate(raw):  # what Lightning's finder records (step count one ahead)
        avg = SMOOTHING * avg + (1 - SMOOTHING) * loss
        smoothed.append(avg / (1 - SMOOTHING ** (i + 2)))
    assert smoothed[0] < 4  # the bias: half the loss at the first step
    assert all(abs(v - 7.6) < 1e-9 for v in unbiased(smoothed))
